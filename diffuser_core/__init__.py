"""Diffuser (Janner et al., 2022) as a plain Python library: no ROS imports here."""
