"""Shared fixtures of the Maze2D tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """The machine is shared: plan on one core, then restore the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
