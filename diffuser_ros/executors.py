"""A multi-threaded rclpy executor that submits each ready callback to its thread pool once.

rclpy 9 (Kilted)'s MultiThreadedExecutor yields a task again, and submits it to the pool again, every
time it wakes while the task still waits in the pool's queue (rclpy issues #1223, #1452; fixed
upstream in rclpy PR #1547, not in the Kilted wheels). With a subscription and a fast timer in one
executor the spin thread then spends its time resubmitting and holding the GIL: measured here, a
400 Hz simulator timer ran at ~10 Hz with one odometry subscriber beside it (1.1 cores busy).
"""
from __future__ import annotations

import threading

from rclpy.exceptions import InvalidHandle
from rclpy.executors import (ConditionReachedException, ExternalShutdownException, MultiThreadedExecutor,
                             ShutdownException, TimeoutException)

QUEUED_WAIT_S = 0.05  # how long the spin thread waits for the pool to start a callback it queued


class PooledExecutor(MultiThreadedExecutor):
    """MultiThreadedExecutor that queues a ready callback once, and waits for the pool to start it
    instead of queueing it again each time rclpy offers it while it waits there. A coroutine callback
    that has run and awaits something is queued again to resume, as before."""

    def __init__(self, num_threads=None, *, context=None) -> None:
        super().__init__(num_threads, context=context)
        self._started: dict = {}  # queued callback -> set once a pool thread starts it

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        started = self._started.get(handler)
        if started is not None and not started.is_set():  # offered again while still in the pool's queue
            started.wait(QUEUED_WAIT_S)
        else:  # new, or a coroutine that ran, awaited something, and is ready to resume
            if started is None:  # _futures holds exactly the callbacks _started holds
                self._futures.append(handler)
            self._started[handler] = started = threading.Event()
            self._executor.submit(self._run, handler, started)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                self._started.pop(future, None)
                self._raise_unless_shut_down(future)

    def _raise_unless_shut_down(self, future) -> None:
        """Raise a callback's exception, except a handle that shutdown() destroyed under a callback
        still finishing in the pool (rclpy's wake-up guard condition): that one is expected."""
        try:
            future.result()
        except InvalidHandle:
            if not self._is_shutdown:
                raise

    @staticmethod
    def _run(handler, started: threading.Event) -> None:
        started.set()
        handler()
