"""Fixtures over the real rclpy (never a mock)."""
import os
import random

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: run scripts/setup.sh")


@pytest.fixture
def ros_context():
    """A fresh rclpy context for one test, shut down and collected afterwards (tests/ros/contexts.py)."""
    from .contexts import ros_context_scope

    with ros_context_scope() as context:
        yield context


def spin_until(executor, predicate, timeout_s=5.0):
    """Spin `executor` until `predicate()` is true or `timeout_s` passes; return predicate()."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return predicate()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny untrained point-mass checkpoint (see planner_harness.write_tiny_checkpoint)."""
    from .planner_harness import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def fresh_ros_domain():
    """A ROS domain no earlier test used, for tests that start node processes and discover them.

    Nodes of earlier tests (same names, same services) can stay in the DDS discovery cache for a
    while after they are destroyed; a client may then see a service as ready and send its request
    to a node that is gone. Processes started inside this fixture inherit the new domain id.
    """
    previous = os.environ["ROS_DOMAIN_ID"]
    candidates = [d for d in range(1, 101) if str(d) != previous]
    os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().choice(candidates))
    yield int(os.environ["ROS_DOMAIN_ID"])
    os.environ["ROS_DOMAIN_ID"] = previous
