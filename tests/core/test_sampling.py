"""Samplers with inpainting: fixed entries are exact in the output for DDPM and DDIM."""
import pytest
import torch

from diffuser_core.sampling.conditioning import Constraint, Inpainting
from diffuser_core.sampling.samplers import DDIMSampler, DDPMSampler, make_sampler

from .toy import ACT_DIM, OBS_DIM, tiny_diffusion

H, D = 16, ACT_DIM + OBS_DIM


def waypoint_inpainting(batch=None):
    constraints = [Constraint(0, (0, 1), (0.25, -0.5)),        # start
                   Constraint(-1, (0, 1), (-0.75, 0.125)),     # goal
                   Constraint(7, (1,), (0.3,)),                # partial waypoint
                   Constraint(3, (0,), (-0.2,), part="action")]
    inpainting = Inpainting.from_constraints(constraints, H, ACT_DIM, OBS_DIM)
    if batch is not None:  # a different start per sample
        values = inpainting.values.expand(batch, H, D).clone()
        values[:, 0, ACT_DIM] = torch.linspace(-1, 1, batch)
        inpainting = Inpainting(inpainting.mask, values)
    return inpainting


@pytest.mark.parametrize("sampler", [DDPMSampler(), DDIMSampler(steps=4), DDIMSampler(steps=5, eta=1.0)])
@pytest.mark.parametrize("batch_values", [False, True])
def test_inpainted_entries_are_exact_after_sampling(sampler, batch_values):
    diffusion = tiny_diffusion()
    inpainting = waypoint_inpainting(batch=3 if batch_values else None)
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        out = sampler.sample(diffusion, torch.randn(3, H, D, generator=generator), inpainting,
                             generator=generator)
    expected = inpainting.values.expand(3, H, D)
    mask = inpainting.mask.expand(3, H, D)
    assert torch.equal(out.trajectories[mask], expected[mask])
    assert inpainting.mask.sum() == 6
    assert not torch.equal(out.trajectories[~mask], torch.zeros_like(out.trajectories[~mask]))


def test_step_counts_of_ddpm_and_ddim():
    diffusion = tiny_diffusion()  # 10 diffusion steps
    x = torch.randn(1, H, D)
    inpainting = Inpainting.none(H, D)
    with torch.inference_mode():
        assert DDPMSampler().sample(diffusion, x, inpainting).denoising_steps == 10
        assert DDIMSampler(steps=4).sample(diffusion, x, inpainting).denoising_steps == 4
        assert DDPMSampler().sample(diffusion, x, inpainting, start_step=2).denoising_steps == 3
        chain = DDIMSampler(steps=4).sample(diffusion, x, inpainting, keep_chain=True).chain
    assert chain.shape == (5, 1, H, D)
    assert DDIMSampler(steps=4).step_sequence(10, 9) == [9, 6, 3, 0]
    assert DDIMSampler(steps=4).step_sequence(10, 4) == [4, 0]  # warm start: half the span


def test_ddim_with_eta_zero_is_deterministic_given_the_start_noise():
    diffusion = tiny_diffusion()
    x, inpainting = torch.randn(2, H, D), waypoint_inpainting()
    with torch.inference_mode():
        first = DDIMSampler(steps=5).sample(diffusion, x, inpainting,
                                            generator=torch.Generator().manual_seed(1))
        second = DDIMSampler(steps=5).sample(diffusion, x, inpainting,
                                             generator=torch.Generator().manual_seed(2))
        noisy = DDIMSampler(steps=5, eta=1.0).sample(diffusion, x, inpainting,
                                                     generator=torch.Generator().manual_seed(2))
    assert torch.equal(first.trajectories, second.trajectories)
    assert not torch.equal(first.trajectories, noisy.trajectories)


def test_sampler_errors_are_clear():
    diffusion = tiny_diffusion()
    with pytest.raises(ValueError, match="start_step"):
        DDPMSampler().sample(diffusion, torch.randn(1, H, D), Inpainting.none(H, D), start_step=10)
    with pytest.raises(ValueError, match="does not fit"):
        DDPMSampler().sample(diffusion, torch.randn(1, 8, D), Inpainting.none(H, D))
    with pytest.raises(ValueError, match=r"sampler must be one of \['ddim', 'ddpm'\]"):
        make_sampler("euler")


@pytest.mark.parametrize("kwargs, message", [
    (dict(t=0, dims=(0, 1), values=(1.0,)), "2 dims but 1 values"),
    (dict(t=0, dims=(0, 0), values=(1.0, 2.0)), "repeats"),
    (dict(t=0, dims=(0,), values=(float("nan"),)), "non-finite"),
    (dict(t=0, dims=(0,), values=(1.0,), part="reward"), "part")])
def test_constraint_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Constraint(**kwargs)


def test_constraints_outside_the_plan_are_rejected():
    with pytest.raises(ValueError, match="outside a plan of horizon 16"):
        Inpainting.from_constraints([Constraint(16, (0,), (1.0,))], H, ACT_DIM, OBS_DIM)
    with pytest.raises(ValueError, match="out of range"):
        Inpainting.from_constraints([Constraint(0, (2,), (1.0,))], H, ACT_DIM, OBS_DIM)
