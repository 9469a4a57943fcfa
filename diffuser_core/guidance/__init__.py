"""Guides J(tau, t) that steer sampling (mu + alpha Sigma grad J): the guide protocol, costs in robot
units, values and their combination (`guides`), and a learned classifier's guide (`classifier`).
Guides that know a task (an object's relations, a map's obstacles) live with that task or wing."""
