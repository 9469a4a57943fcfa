"""Run by test_training under torchrun (2 CPU processes, gloo): train a few steps with the
generic Trainer and report what this rank ended with."""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from diffuser_core.data.datasets import SequenceDataset, fit_normalizer
from diffuser_core.training.trainer import Trainer, cleanup_distributed, setup_distributed
from tests.core.toy import HORIZON, checkpoint_config, line_episodes, quick_training, tiny_diffusion


def main(out_dir: str) -> None:
    context = setup_distributed("cpu")
    episodes = line_episodes(count=32)
    normalizer = fit_normalizer(episodes)
    dataset = SequenceDataset(episodes, HORIZON, normalizer)
    torch.manual_seed(context.rank)  # different initial weights: DDP must broadcast rank 0's
    trainer = Trainer(tiny_diffusion(seed=context.rank), dataset,
                      quick_training(steps=4, batch_size=8, log_every=2, checkpoint_every=2),
                      checkpoint_config(), normalizer, out_dir, context)
    trainer.train()
    weights = torch.cat([p.detach().flatten() for p in [*trainer.objective.parameters(),
                                                        *trainer.ema.model.parameters()]]).numpy()
    np.save(Path(out_dir) / f"weights_rank{context.rank}.npy", weights)
    report = {"rank": context.rank, "world_size": context.world_size,
              "backend": torch.distributed.get_backend(), "saved": str(trainer.save())}
    (Path(out_dir) / f"report_rank{context.rank}.json").write_text(json.dumps(report))
    cleanup_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
