"""Run one node module as a process for `bringup`: `python -m diffuser_ros.launcher MODULE [ARGS...]`.

Importing a node pulls in torch and rclpy (seconds); a Ctrl-C in that time would otherwise end the
process with a traceback. Only the standard library is imported before the node's module.
"""
import importlib
import sys


def main() -> int:
    module_name, argv = sys.argv[1], sys.argv[2:]
    try:
        return importlib.import_module(module_name).main(argv)
    except KeyboardInterrupt:  # stopped while starting: a clean exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
