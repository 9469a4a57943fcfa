"""Offline data: episodes and training windows (`datasets`), normalizers (`normalization`) and
D4RL's hdf5 layout (`d4rl_hdf5`)."""
