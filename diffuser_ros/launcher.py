"""Run one node module as a process for `bringup`: `python -m diffuser_ros.launcher MODULE [ARGS...]`.

Importing a node pulls in torch and rclpy (seconds; over 30 s on a loaded 2-core machine). A Ctrl-C
in that time ends the process at once with exit code 0: nothing exists yet that needs stopping or
cleaning up, and no KeyboardInterrupt is raised, which inside an extension module's initialisation
can abort the process ("terminate called after throwing an instance of
'pybind11::error_already_set'", seen under load). Only the standard library is imported before the
node's module.
"""
import ctypes
import importlib
import os
import signal
import sys


def _exit_while_starting(*_) -> None:
    """SIGINT during the node's import: leave now, without raising anything into the import."""
    os._exit(0)


def main() -> int:
    module_name, argv = sys.argv[1], sys.argv[2:]
    # bringup starts its children with Ctrl-C ignored (so one during interpreter start-up is not fatal);
    # from here on it ends the process until the node's module is imported, then raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, _exit_while_starting)
    try:
        module = importlib.import_module(module_name)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return module.main(argv)
    except Exception as error:  # some libraries re-raise a Ctrl-C as another error (numpy: ImportError)
        if caused_by_interrupt(error):
            return 0
        raise
    except KeyboardInterrupt:  # stopped while starting: a clean exit
        return 0
    finally:
        # Stopping: bringup repeats SIGINT until we are gone, and Python resets a handled signal to
        # its default (terminate) while finalizing; ignored, it stays ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        forget_interrupts_raised_under_extensions()


def forget_interrupts_raised_under_extensions() -> None:
    """Let a process that caught its Ctrl-C exit with its own exit code.

    CPython 3.11 sets a flag when a KeyboardInterrupt leaves Python code that a C extension ran with
    PyRun_String (rclpy's pybind11 module does), even when our code catches it further up, and at exit
    the flag makes the interpreter kill itself by SIGINT: bringup saw "exit -2" after a clean stop.
    """
    try:
        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except ValueError:  # an interpreter without this flag: nothing to forget
        pass


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
