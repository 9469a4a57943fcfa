"""The denoiser through ONNX Runtime or frozen TorchScript gives torch's outputs (within float32
round-off) for any batch and horizon, flat and hierarchical; plans with inpainting, guides and warm
starts agree under every backend; `diffuser-ros export --onnx` writes a model ONNX Runtime loads."""
import numpy as np
import pytest
import torch

from diffuser_core.checkpoint import CheckpointConfig, save_checkpoint
from diffuser_core.config import DiffusionConfig, UnetConfig
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.guides import CostGuide
from diffuser_core.model.backends import AUTO_ONNX_MAX_BATCH, InferenceNetwork, onnx_session
from diffuser_core.model.diffusion import build_diffusion
from diffuser_core.planning.loading import load_planner
from diffuser_core.planning.planner import PlannerConfig

TOLERANCE = 1e-4  # float32 round-off of two implementations of the same network


def tiny_checkpoint(path, stride=1):
    unet, diffusion = UnetConfig(dim=8, dim_mults=(1, 2)), DiffusionConfig(n_timesteps=8)
    torch.manual_seed(0)
    model = build_diffusion(4, 2, unet, diffusion)
    rng = np.random.default_rng(0)
    normalizer = TrajectoryNormalizer.fit(rng.uniform(0, 4, (64, 4)), rng.uniform(-1, 1, (64, 2)), "limits")
    config = CheckpointConfig("diffusion", 4, 2, horizon=16, diffusion=diffusion, unet=unet, stride=stride)
    return save_checkpoint(path, model, normalizer, config)


@pytest.mark.parametrize("backend", ["onnx", "auto"])
def test_every_backend_gives_torchs_outputs_for_any_batch_and_horizon(tmp_path, backend):
    planner = load_planner(tiny_checkpoint(tmp_path / "tiny.safetensors"), PlannerConfig(backend="torch"))
    network = planner.diffusion.network
    fast = InferenceNetwork(network, 6, 16, backend)
    for batch, horizon in ((1, 16), (AUTO_ONNX_MAX_BATCH + 3, 16), (2, 8), (1, 24)):
        x, t = torch.randn(batch, horizon, 6), torch.randint(0, 8, (batch,))
        with torch.inference_mode():
            assert torch.allclose(fast(x, t), network(x, t), atol=TOLERANCE), (batch, horizon)
    with pytest.raises(ValueError, match="multiple"):
        fast(torch.randn(1, 7, 6), torch.zeros(1, dtype=torch.long))


@pytest.mark.parametrize("stride", [1, 4], ids=["flat", "hierarchical"])
def test_guided_warm_started_plans_agree_under_every_backend(tmp_path, stride):
    path = tiny_checkpoint(tmp_path / "tiny.safetensors", stride)
    start, goal = np.array([1.0, 1.0, 0.0, 0.0]), np.array([3.0, 2.0, 0.0, 0.0])
    plans = {}
    for backend in ("torch", "onnx", "auto"):
        config = PlannerConfig(backend=backend, warm_start=True, warm_start_steps=4, seed=3, guide_scale=0.5)
        planner = load_planner(path, config, segments=None)
        guide = CostGuide(lambda x, t: (x[..., 2] - 2.0).pow(2).sum(-1), 1.0, planner.normalizer)
        first = planner.plan(start, goal=goal, guides=[guide], candidates=3)
        again = planner.plan(first.observations[2], goal=goal, guides=[guide], executed_steps=2)
        plans[backend] = (first.observations, again.observations, again.warm_started)
    for backend in ("onnx", "auto"):
        for ours, torchs in zip(plans[backend][:2], plans["torch"][:2]):
            assert np.allclose(ours, torchs, atol=1e-3), backend
        assert plans[backend][2] and np.allclose(plans[backend][0][0], start)  # warm start, start inpainted


def test_the_export_command_writes_an_onnx_model_with_dynamic_batch_and_horizon(tmp_path):
    from diffuser_core.cli import main
    from diffuser_core.checkpoint import load_checkpoint

    path = tiny_checkpoint(tmp_path / "tiny.safetensors")
    assert main(["export", str(path), "--onnx", str(tmp_path / "tiny.onnx")]) == 0
    session = onnx_session(tmp_path / "tiny.onnx", threads=1)
    diffusion, _, _ = load_checkpoint(path)
    x, t = torch.randn(3, 8, 6), torch.randint(0, 8, (3,))
    with torch.inference_mode():
        expected = diffusion.network(x, t).numpy()
    assert np.allclose(session.run(None, {"x": x.numpy(), "t": t.numpy()})[0], expected, atol=TOLERANCE)


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        PlannerConfig(backend="tensorrt")
