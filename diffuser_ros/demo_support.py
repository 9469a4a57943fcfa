"""What both demos (Maze2D and Kuka) share: the demo's own node in its own executor, waiting for the
simulator's first state, and spinning the recorders while a goal runs."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import rclpy
from rclpy.executors import SingleThreadedExecutor

STATE_TIMEOUT_S = 120.0  # s for the simulator's first state: its start-up on a loaded machine


@contextmanager
def demo_node(name: str):
    """rclpy up with one node (the demo's recorders) in its own executor; all of it down afterwards."""
    rclpy.init()
    node = rclpy.create_node(name)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


def wait_until(executor, ready, what: str, check, timeout_s: float = STATE_TIMEOUT_S) -> None:
    """Spin `executor` until `ready()`, running `check()` (raises when a node died) every cycle: a goal
    sent before the simulator's first state is aborted by the planner, and a simulator still starting
    (slow on a loaded machine) has none yet. RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {timeout_s:.0f} s")
        check()
        executor.spin_once(timeout_sec=0.05)


@contextmanager
def spinning_in_background(executor):
    """Spin `executor` (the recorders' subscriptions) in a daemon thread while the block runs."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
