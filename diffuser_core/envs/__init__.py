"""Simulated robots used to generate data and evaluate plans (Maze2D on mujoco, Kuka on pybullet)."""
