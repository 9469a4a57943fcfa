"""Fixtures over the real rclpy (never a mock)."""
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: run scripts/setup.sh")


@pytest.fixture
def ros_context():
    """A fresh rclpy context for one test, shut down afterwards."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def spin_until(executor, predicate, timeout_s=5.0):
    """Spin `executor` until `predicate()` is true or `timeout_s` passes; return predicate()."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return predicate()
