"""Shared test set-up: keep ROS 2 traffic on loopback and on a domain of this test run's own."""
import os
import random

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# Concurrent test runs on one machine must not see each other's topics.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
