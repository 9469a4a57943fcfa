"""Temporal U-Net: shapes for any valid horizon, clear errors, local receptive field."""
import pytest
import torch

from diffuser_core.config import UnetConfig
from diffuser_core.model.unet import TemporalUnet


def test_output_shape_matches_input_for_every_valid_horizon():
    torch.manual_seed(0)
    net = TemporalUnet(5, UnetConfig(dim=8, dim_mults=(1, 2, 4)))
    for horizon in (4, 8, 12, 32, 36):
        x = torch.randn(3, horizon, 5)
        assert net(x, torch.tensor([0, 4, 9])).shape == (3, horizon, 5)


@pytest.mark.parametrize("horizon", [2, 6, 10, 0])
def test_invalid_horizon_raises_clear_error(horizon):
    net = TemporalUnet(5, UnetConfig(dim=8, dim_mults=(1, 2, 4)))
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.randn(1, horizon, 5), torch.zeros(1, dtype=torch.long))


def test_wrong_transition_dim_raises():
    net = TemporalUnet(5, UnetConfig(dim=8, dim_mults=(1, 2)))
    with pytest.raises(ValueError, match=r"\(batch, horizon, 5\)"):
        net(torch.randn(1, 8, 4), torch.zeros(1, dtype=torch.long))


def test_diffusion_step_changes_the_output():
    torch.manual_seed(0)
    net = TemporalUnet(3, UnetConfig(dim=8, dim_mults=(1, 2)))
    x = torch.randn(1, 8, 3)
    assert not torch.allclose(net(x, torch.tensor([0])), net(x, torch.tensor([7])))


def input_gradient_at(net, horizon, step):
    """|d output[step] / d input| summed over dims, for every input time step (one network call)."""
    x = torch.randn(1, horizon, net.transition_dim, requires_grad=True)
    net(x, torch.tensor([3]))[0, step].sum().backward()
    return x.grad[0].abs().sum(-1)


def test_receptive_field_is_local_in_time():
    torch.manual_seed(0)
    net = TemporalUnet(4, UnetConfig(dim=8, dim_mults=(1, 2), norm="none"))
    radius, horizon, step = net.receptive_radius(), 256, 128
    influence = input_gradient_at(net, horizon, step)
    distance = (torch.arange(horizon) - step).abs()
    assert influence[distance > radius].abs().max() == 0  # exactly no influence far away
    assert influence[distance <= 2].min() > 0
    assert influence[(distance > radius // 2) & (distance <= radius)].max() > 0  # bound is tight-ish


def test_group_norm_couples_time_steps_only_weakly():
    """The paper's GroupNorm normalises over the whole plan, so far steps get a small gradient
    through the statistics; the convolutional path stays local."""
    torch.manual_seed(0)
    net = TemporalUnet(4, UnetConfig(dim=8, dim_mults=(1, 2), norm="group"))
    influence = input_gradient_at(net, 256, 128)
    distance = (torch.arange(256) - 128).abs()
    far = influence[distance > net.receptive_radius()].mean()
    near = influence[distance <= 8].mean()
    assert far < 0.1 * near


def test_start_embedding_lets_the_start_state_reach_steps_beyond_the_receptive_field():
    """Without it a strictly local U-Net cannot see the start from far plan steps; with it every
    step does, and only through the observation columns (the start's actions are not fixed)."""
    torch.manual_seed(0)
    action_dim, transition_dim = 2, 5
    local = TemporalUnet(transition_dim, UnetConfig(dim=8, dim_mults=(1, 2), norm="none"), action_dim)
    embedded = TemporalUnet(transition_dim, UnetConfig(dim=8, dim_mults=(1, 2), norm="none",
                                                       start_embedding=True), action_dim)
    far = 2 * (local.receptive_radius() // 2) + 2
    for net, sees_start in ((local, False), (embedded, True)):
        x = torch.randn(1, far + 8, transition_dim, requires_grad=True)
        net(x, torch.tensor([3]))[0, far].sum().backward()
        start_gradient = x.grad[0, 0].abs()
        assert (start_gradient[action_dim:].min() > 0) == sees_start
        assert start_gradient[:action_dim].max() == 0


def test_start_embedding_needs_an_inpainted_start():
    from diffuser_core.config import DiffusionConfig
    from diffuser_core.model.diffusion import build_diffusion

    unet = UnetConfig(dim=8, dim_mults=(1, 2), start_embedding=True)
    build_diffusion(3, 1, unet, DiffusionConfig(condition_on="start_goal"))
    with pytest.raises(ValueError, match="start_embedding.*condition_on"):
        build_diffusion(3, 1, unet, DiffusionConfig(condition_on="none"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_embedding="yes"), "unet.start_embedding"),
    (dict(dim=7), "even"), (dict(dim_mults=()), "at least one"), (dict(kernel_size=4), "odd"),
    (dict(dim=12, norm_groups=8), "divisible"), (dict(norm="batch"), "unet.norm")])
def test_unet_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UnetConfig(**kwargs)
