"""How every node process of this package starts, spins and stops."""
from __future__ import annotations

import gc
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from diffuser_ros.launcher import caused_by_interrupt, forget_interrupts_raised_under_extensions


def _interrupt(*_):
    raise KeyboardInterrupt


def _stopping() -> None:
    """From here on the process is stopping: a repeated Ctrl-C or SIGTERM must not cut the safe stop
    short, and the interrupt that started it must not turn the exit code into a death by SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    forget_interrupts_raised_under_extensions()


_NODE_PROCESS = False  # set by run_node: this process exists to run one node
SIGNAL_POLL_S = 0.1  # wall-clock s a spin waits at most before it looks for Ctrl-C or SIGTERM again


def spin_until_shutdown(executor) -> None:
    """Spin until the context shuts down, waking at least every SIGNAL_POLL_S: a Python signal handler
    runs only between waits, so a node with nothing due (no traffic, or timers on a simulated clock
    that does not advance) would otherwise never see Ctrl-C or SIGTERM."""
    while executor.context.ok():
        executor.spin_once(timeout_sec=SIGNAL_POLL_S)


def keep_wall_clock_when_publishing_clock(node, publish_clock: bool) -> None:
    """A node that publishes /clock is the clock: its timers run on the wall clock. Under
    use_sim_time they would wait for the very clock they are to publish, and the node would never
    start; use_sim_time is turned off with a warning."""
    if publish_clock and node.get_parameter("use_sim_time").value:
        node.get_logger().warning("use_sim_time ignored: this node publishes /clock (publish_clock), so its "
                                  "timers run on the wall clock; set use_sim_time on the other nodes only")
        node.set_parameters([Parameter("use_sim_time", value=False)])


def freeze_startup_objects() -> None:
    """In a node process, move every object alive now (modules, torch, the model) out of the
    garbage collector's reach. Without this, a full collection while the node runs walks them all
    and stops every thread of the process for ~100 ms (measured: 130 ms gaps in the 100 Hz
    command stream). Not done for nodes built inside another program (tests): frozen objects are
    never collected, and an rclpy context that is only freed by the collector would keep its DDS
    participant alive."""
    if _NODE_PROCESS:
        gc.collect()
        gc.freeze()


def run_node(node_factory, argv=None, executor_factory=SingleThreadedExecutor, name: str = "") -> int:
    """Init rclpy, build the node, spin it until Ctrl-C or shutdown, then clean up.

    A ValueError while building the node is a configuration error: its message is printed (no
    traceback) and the process exits with 2. The executor is made after rclpy.init, as it must
    be. `node.stop_safely()`, if defined, runs before the node is destroyed (a controller sends
    its safe command there).
    """
    # rclpy's own SIGINT handler would shut the context down before stop_safely() could still
    # publish; Ctrl-C and SIGTERM raise KeyboardInterrupt instead, and the context ends last.
    global _NODE_PROCESS
    _NODE_PROCESS = True
    args = sys.argv if argv is None else [sys.argv[0], *argv]  # argv: the arguments after the program name
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        node = node_factory()
    except KeyboardInterrupt:  # Ctrl-C while starting up: stop quietly
        _stopping()
        rclpy.try_shutdown()
        return 0
    except ValueError as error:
        _stopping()
        if caused_by_interrupt(error):
            rclpy.try_shutdown()
            return 0
        print(f"[ERROR] [{name or getattr(node_factory, '__name__', 'node')}]: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    freeze_startup_objects()
    executor = executor_factory()
    executor.add_node(node)
    try:
        spin_until_shutdown(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _stopping()
        if hasattr(node, "stop_safely"):
            node.stop_safely()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
