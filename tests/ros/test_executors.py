"""`PooledExecutor` over the real rclpy: a fast timer keeps its rate beside a subscription in the same
executor (rclpy's MultiThreadedExecutor dropped it to 10-30 of 400 steps/s on an idle 2-core machine;
not asserted here: under CPU load from other processes it did better), coroutine callbacks still resume
after they await, and a callback's exception reaches the spinning thread."""
import threading
import time

import pytest
import rclpy
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.task import Future

from diffuser_ros.executors import PooledExecutor
from diffuser_ros.maze2d_sim_node import Maze2DSim


def simulator_steps_per_second(context, executor_class) -> float:
    """Steps/s of a 400 steps/s maze simulator sharing its executor with an odometry subscriber."""
    sim = Maze2DSim(context=context, parameter_overrides=[Parameter("real_time_factor", value=4.0)])
    listener = rclpy.create_node("odometry_listener", context=context)
    listener.create_subscription(Odometry, "odom", lambda _: None, qos_profile_sensor_data)
    executor = executor_class(num_threads=3, context=context)
    executor.add_node(sim)
    executor.add_node(listener)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        steps, start = sim.sim_steps, time.monotonic()
        time.sleep(1.5)
        return (sim.sim_steps - steps) / (time.monotonic() - start)
    finally:
        executor.shutdown()
        sim.destroy_node()
        listener.destroy_node()
        thread.join(timeout=5)


def test_a_fast_timer_keeps_its_rate_beside_a_subscription(fresh_ros_domain, ros_context):
    assert simulator_steps_per_second(ros_context, PooledExecutor) > 300  # of 400


def test_a_coroutine_callback_resumes_after_awaiting(ros_context):
    executor = PooledExecutor(num_threads=2, context=ros_context)
    outside = Future()
    outside.add_done_callback(lambda _: executor.wake())  # as rclpy's own futures wake their executor
    steps = []

    async def waits_for_outside():
        steps.append("started")
        value = await outside
        steps.append(value)
        return value

    task = executor.create_task(waits_for_outside)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while steps != ["started"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert steps == ["started"]
        outside.set_result("resumed")
        while not task.done() and time.monotonic() < deadline + 5:
            time.sleep(0.01)
        assert task.result() == "resumed" and steps == ["started", "resumed"]
    finally:
        executor.shutdown()
        thread.join(timeout=5)


def test_a_callbacks_exception_reaches_the_spinning_thread(ros_context):
    node = rclpy.create_node("raises", context=ros_context)
    executor = PooledExecutor(num_threads=2, context=ros_context)

    def fail():
        raise RuntimeError("from a timer")

    node.create_timer(0.01, fail)
    executor.add_node(node)
    try:
        with pytest.raises(RuntimeError, match="from a timer"):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()


def test_a_destroyed_handle_is_raised_while_spinning_and_expected_after_shutdown(ros_context):
    """shutdown() destroys rclpy's wake-up guard condition under callbacks still finishing in the
    pool; their InvalidHandle then is not an error, while one before shutdown is."""
    from rclpy.exceptions import InvalidHandle

    executor = PooledExecutor(num_threads=2, context=ros_context)
    failed = Future()
    failed.set_exception(InvalidHandle("cannot use Destroyable because destruction was requested"))
    with pytest.raises(InvalidHandle):
        executor._raise_unless_shut_down(failed)
    executor.shutdown()
    executor._raise_unless_shut_down(failed)
