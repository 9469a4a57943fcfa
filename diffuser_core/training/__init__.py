"""Training: the trainer with checkpoints, resume and distributed data parallel (`trainer`), and the
exponential moving average of the weights (`ema`), and the small Adam loop that fits the learned helpers
beside it (`fitting`)."""
