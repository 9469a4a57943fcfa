"""Diffdrive: a differential-drive (unicycle) robot in mujoco rooms and mazes, its tracking rule and scripted expert."""
