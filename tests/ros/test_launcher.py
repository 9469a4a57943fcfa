"""The node launcher treats a Ctrl-C during start-up as a clean stop (at once during the import; after
it, even when a library re-raised it), and a process that caught its Ctrl-C exits with its own code."""
import os
import signal
import subprocess
import sys
import time

import pytest

from diffuser_ros.launcher import caused_by_interrupt


def raise_chained(outer, inner):
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except BaseException as error:
        return error


@pytest.mark.parametrize("error, expected", [
    (raise_chained(ImportError("numpy failed"), KeyboardInterrupt()), True),  # numpy wraps C-import errors
    (raise_chained(ImportError("x"), raise_chained(RuntimeError("y"), KeyboardInterrupt())), True),
    (raise_chained(ImportError("missing module"), OSError("no file")), False),
    (ValueError("plain"), False),
])
def test_an_interrupt_anywhere_in_the_chain_counts(error, expected):
    assert caused_by_interrupt(error) is expected


# A node module whose start-up is interrupted inside Python code that a C extension runs with
# PyRun_String (as rclpy's pybind11 module does); the node catches the interrupt and stops cleanly.
INTERRUPTED_UNDER_AN_EXTENSION = '''
import ctypes


def main(argv):
    ctypes.pythonapi.PyRun_SimpleString(b"raise KeyboardInterrupt")  # prints it, as CPython does
    return 0
'''

RUN_NODE_INTERRUPTED_UNDER_AN_EXTENSION = '''
import ctypes, sys
from diffuser_ros.runtime import run_node


def factory():
    ctypes.pythonapi.PyRun_SimpleString(b"raise KeyboardInterrupt")
    raise KeyboardInterrupt  # what the interrupted start-up then raises in the node


sys.exit(run_node(factory, argv=[]))
'''


def _with_path(directory):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")])}


def test_a_process_that_caught_its_interrupt_exits_with_its_own_code_through_the_launcher(tmp_path):
    (tmp_path / "interrupted_node.py").write_text(INTERRUPTED_UNDER_AN_EXTENSION)
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.launcher", "interrupted_node"], env=_with_path(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # CPython alone: -2 (killed itself by SIGINT)


def test_run_node_exits_with_its_own_code_after_an_interrupt_under_an_extension(tmp_path):
    # run with -m, as `python -m diffuser_ros.planner_node` runs (the -c path exits before CPython looks)
    (tmp_path / "interrupted_run_node.py").write_text(RUN_NODE_INTERRUPTED_UNDER_AN_EXTENSION)
    result = subprocess.run([sys.executable, "-m", "interrupted_run_node"], env=_with_path(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


SLOW_TO_IMPORT = '''
import time
time.sleep(10)  # as importing torch and rclpy takes seconds
print("import finished", flush=True)


def main(argv):
    print("node started", flush=True)
    return 0
'''


def test_a_ctrl_c_during_the_import_ends_the_process_at_once_and_cleanly(tmp_path):
    """No KeyboardInterrupt is raised into the import (inside an extension module's initialisation
    it can abort the process), and the process does not wait for the import to finish."""
    (tmp_path / "slow_node.py").write_text(SLOW_TO_IMPORT)
    process = subprocess.Popen([sys.executable, "-m", "diffuser_ros.launcher", "slow_node"], env=_with_path(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as bringup does
    time.sleep(0.7)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "import finished" not in output and "node started" not in output and "Traceback" not in output, output
