"""`diffuser-ros` command line: train a model, sample plans from a checkpoint, plot them.

  diffuser-ros train  --config run.yaml --dataset data.hdf5 [--loader module:function] --out runs/x
  diffuser-ros sample --checkpoint runs/x/latest.safetensors --start 1 1 0 0 --goal 3 3 0 0 --out plans.npz
  diffuser-ros plot   plans.npz --out plans.png [--walls walls.npy]

`train` works under torchrun for multi-GPU data parallel training.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from diffuser_core.data.datasets import SequenceDataset, ValueDataset, fit_normalizer
from diffuser_core.model.backends import export_onnx
from diffuser_core.model.diffusion import build_diffusion
from diffuser_core.model.value import ValueModel, ValueObjective
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.sampling.samplers import SAMPLER_NAMES
from diffuser_core.training.trainer import Trainer, cleanup_distributed

from .checkpoint import CheckpointConfig, load_planning_checkpoint, save_checkpoint
from .config import ExperimentConfig
from .plotting import plot_denoising_strip, plot_plans, save_figure
from .tasks import resolve_loader


def build_parser(add_commands=None) -> argparse.ArgumentParser:
    """The argparse parser with the train / sample / plot / export subcommands; `add_commands(commands)`
    lets a package that builds on the core add its own to the same `diffuser-ros` command."""
    parser = argparse.ArgumentParser(prog="diffuser-ros", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a diffusion (or value) model on episodes")
    train.add_argument("--config", required=True, help="experiment YAML/JSON file")
    train.add_argument("--dataset", required=True, help="dataset path given to the loader")
    train.add_argument("--loader", help="episode loader: registered name or module:function "
                                        "(default: the config's 'loader', else 'hdf5')")
    train.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    train.add_argument("--objective", choices=("diffusion", "value"), default="diffusion")
    train.add_argument("--resume", help="training checkpoint to continue from")
    train.add_argument("--steps", type=int, help="override training.steps")
    train.set_defaults(run=run_train)

    sample = commands.add_parser("sample", help="sample plans from a checkpoint into an .npz")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--start", type=float, nargs="+", required=True, help="start observation")
    sample.add_argument("--goal", type=float, nargs="+", help="goal values (for --goal-dims)")
    sample.add_argument("--goal-dims", type=int, nargs="+", help="observation dims the goal fixes")
    sample.add_argument("--n", type=int, default=4, help="number of plans")
    sample.add_argument("--sampler", choices=SAMPLER_NAMES, default="ddim")
    sample.add_argument("--steps", type=int, help="DDIM denoising steps (default: all)")
    sample.add_argument("--eta", type=float, default=0.0)
    sample.add_argument("--horizon", type=int, help="plan length (default: the checkpoint's)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="cpu")
    sample.add_argument("--out", required=True, help="output .npz (observations, actions, chain)")
    sample.set_defaults(run=run_sample)

    plot = commands.add_parser("plot", help="draw plans and the denoising strip from an .npz")
    plot.add_argument("plans", help=".npz written by `sample`")
    plot.add_argument("--out", required=True, help="image path; the strip goes to <stem>_denoising")
    plot.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="observation dims to draw")
    plot.add_argument("--walls", help=".npy boolean wall grid to draw under the plans")
    plot.add_argument("--extent", type=float, nargs=4, help="map xmin xmax ymin ymax")
    plot.add_argument("--panels", type=int, default=6, help="panels in the denoising strip")
    plot.set_defaults(run=run_plot)

    export = commands.add_parser("export", help="write a planning-only checkpoint (EMA weights, no "
                                                "optimizer state) from a training checkpoint, and/or its "
                                                "network as ONNX")
    export.add_argument("checkpoint", help="training or planning checkpoint (.safetensors)")
    export.add_argument("--out", help="planning checkpoint to write")
    export.add_argument("--onnx", help="ONNX file to write: the denoiser (or the value model), dynamic batch "
                                       "and horizon, for ONNX Runtime or TensorRT")
    export.add_argument("--half", action="store_true",
                        help="store the weights as float16 (half the size; loaded back as float32)")
    export.set_defaults(run=run_export)
    if add_commands is not None:
        add_commands(commands)
    return parser


def main(argv=None, parser: argparse.ArgumentParser | None = None) -> int:
    """Entry point of the `diffuser-ros` console script (`parser`: build_parser's, with added commands)."""
    args = (parser or build_parser()).parse_args(argv)
    try:
        return args.run(args) or 0
    except ValueError as error:  # bad configs, datasets, checkpoints (CheckpointError): say what, no traceback
        print(f"diffuser-ros {args.command}: {error}", file=sys.stderr)
        return 2


def warn_if_unet_narrower_than_trajectory(unet_dim: int, transition_dim: int) -> None:
    """The U-Net's full-resolution level carries unet.dim channels; narrower than the trajectory it
    cannot pass every dimension through (measured on Kuka, 39-D: dim 32 never learned to denoise
    per-step noise nor to use the blocks' positions; dim 64 did within 2k steps)."""
    if unet_dim < transition_dim:
        print(f"warning: model.dim={unet_dim} is narrower than the trajectory's {transition_dim} "
              f"dimensions; use model.dim >= {transition_dim}", file=sys.stderr)


def run_train(args) -> None:
    """Load episodes with the chosen loader, fit the normalizer, train, write checkpoints."""
    experiment = ExperimentConfig.from_file(args.config)
    training = experiment.training
    if args.steps is not None:
        training = replace(training, steps=args.steps)
    loader_name = args.loader or experiment.loader
    episodes = resolve_loader(loader_name)(args.dataset)
    normalizer = fit_normalizer(episodes, experiment.dataset.normalizer, experiment.dataset.normalizer_min_scale)
    horizon, padding, stride = experiment.dataset.horizon, experiment.dataset.padding, experiment.dataset.stride
    torch.manual_seed(training.seed)  # identical initial weights on every rank
    observation_dim, action_dim = normalizer.observation_dim, normalizer.action_dim
    if args.objective == "diffusion":
        warn_if_unet_narrower_than_trajectory(experiment.model.dim, observation_dim + action_dim)
        dataset = SequenceDataset(episodes, horizon, normalizer, padding, stride)
        objective = build_diffusion(observation_dim, action_dim, experiment.model, experiment.diffusion)
        objective.network.check_horizon(horizon)
    else:
        dataset = ValueDataset(episodes, horizon, normalizer, padding, experiment.value.discount, stride)
        objective = ValueObjective(ValueModel(observation_dim + action_dim, experiment.value),
                                   experiment.diffusion.n_timesteps, action_dim,
                                   experiment.diffusion.condition_on)
    checkpoint_config = CheckpointConfig(
        kind=args.objective, observation_dim=observation_dim, action_dim=action_dim, horizon=horizon,
        normalizer=normalizer.kind, diffusion=experiment.diffusion,
        unet=experiment.model if args.objective == "diffusion" else None,
        value=experiment.value if args.objective == "value" else None, env=experiment.env, stride=stride,
        dataset={"path": str(args.dataset), "loader": loader_name, "episodes": len(dataset.episodes),
                 "windows": len(dataset), "padding": padding, "stride": stride})
    trainer = Trainer(objective, dataset, training, checkpoint_config, normalizer, args.out)
    try:
        if args.resume:
            trainer.resume(args.resume)
        trainer.train()
    finally:
        cleanup_distributed()


def run_export(args) -> None:
    """Keep what planning needs: the EMA weights, the normalizer and the config (a diffusion or a
    value checkpoint); with --onnx, the network itself as an ONNX model."""
    if not (args.out or args.onnx):
        raise SystemExit("diffuser-ros export: give --out (a planning checkpoint), --onnx (an ONNX model) or both")
    model, normalizer, config = load_planning_checkpoint(args.checkpoint)
    if args.out:
        path = save_checkpoint(args.out, model, normalizer, config,
                               weight_dtype=torch.float16 if args.half else None)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, step {config.step})")
    if args.onnx:
        network = model.network if config.kind == "diffusion" else model.value_model
        export_onnx(network, config.observation_dim + config.action_dim, config.horizon, args.onnx,
                    per_step_output=config.kind == "diffusion")
        size = Path(args.onnx).stat().st_size / 1e6
        print(f"wrote {args.onnx} ({size:.1f} MB, {config.kind} network, dynamic batch and horizon)")


def run_sample(args) -> None:
    """Sample --n plans (with their denoising chains) from a checkpoint into an .npz."""
    config = PlannerConfig(sampler=args.sampler, denoising_steps=args.steps, eta=args.eta,
                           horizon=args.horizon, seed=args.seed, keep_chain=True)
    planner = Planner.from_checkpoint(args.checkpoint, config, args.device)
    plans = [planner.plan(np.asarray(args.start), goal=args.goal, goal_dims=args.goal_dims)
             for _ in range(args.n)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, observations=np.stack([p.observations for p in plans]),
             actions=np.stack([p.actions for p in plans]), chain=np.stack([p.chain for p in plans]),
             denoising_steps=plans[0].denoising_steps)
    print(f"wrote {args.n} plans of horizon {planner.horizon} to {out}")


def run_plot(args) -> None:
    """Draw the plans of an .npz on an optional wall map, plus the first plan's denoising strip."""
    with np.load(args.plans, allow_pickle=False) as data:
        observations = data["observations"]
        chain = data["chain"] if "chain" in data else None
    walls = np.load(args.walls, allow_pickle=False) if args.walls else None
    out = Path(args.out)
    save_figure(plot_plans(observations, args.dims, walls, args.extent), out)
    written = [out]
    if chain is not None:
        strip = plot_denoising_strip(chain[0], args.dims, args.panels, walls, args.extent)
        written.append(save_figure(strip, out.with_name(f"{out.stem}_denoising{out.suffix}")))
    print("wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    raise SystemExit(main())
