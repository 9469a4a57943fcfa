"""Checkpoints never go through pickle: a malicious pickle file is refused and never executed."""
import pickle

import pytest

from diffuser_core.checkpoint import CheckpointError, load_checkpoint
from diffuser_core.planning.planner import Planner


class Payload:
    """Unpickling this would create `marker` (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.pt", "evil.ckpt"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    with pytest.raises(CheckpointError, match="corrupted or not safetensors"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        Planner.from_checkpoint(path)
    assert not marker.exists(), "the pickle payload ran"
    pickle.loads(path.read_bytes())  # sanity: the payload is live when unpickled
    assert marker.exists()
