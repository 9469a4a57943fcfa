"""The node launcher treats a Ctrl-C during start-up as a clean stop, even when a library re-raised it."""
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
