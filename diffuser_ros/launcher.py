"""Run one node module as a process for `bringup`: `python -m diffuser_ros.launcher MODULE [ARGS...]`.

Importing a node pulls in torch and rclpy (seconds); a Ctrl-C in that time would otherwise end the
process with a traceback. Only the standard library is imported before the node's module.
"""
import importlib
import signal
import sys


def main() -> int:
    # bringup starts its children with Ctrl-C ignored (so one during interpreter start-up is not fatal);
    # from here on Ctrl-C raises KeyboardInterrupt again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module_name, argv = sys.argv[1], sys.argv[2:]
    try:
        return importlib.import_module(module_name).main(argv)
    except Exception as error:  # some imports (numpy's) re-raise a Ctrl-C as ImportError
        if caused_by_interrupt(error):
            return 0
        raise
    except KeyboardInterrupt:  # stopped while starting: a clean exit
        return 0
    finally:
        # Stopping: bringup repeats SIGINT until we are gone, and Python resets a handled signal to
        # its default (terminate) while finalizing; ignored, it stays ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in the exception's cause/context chain."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
