"""The keep-out shield brakes an acceleration-commanded robot before an obstacle, whatever it is told,
and leaves commands alone away from obstacles."""
import numpy as np
import pytest

from diffuser_core.planar.avoidance import keep_out_shield
from diffuser_core.planar.shield import Braking
from diffuser_core.planar.costmap import OccupancyMap
from diffuser_core.planar.shield import KeepOutShield

DT, GAIN = 0.01, 25.0  # a double integrator: 25 m/s^2 per unit command, 100 Hz


def wall_at(x0: float) -> OccupancyMap:
    """A 4 x 2 m map whose cells from x0 on are occupied."""
    occupancy = OccupancyMap(np.zeros((20, 40), dtype=bool), 0.1, (0.0, 0.0))
    occupied = occupancy.cell_centers()[..., 0] >= x0
    return OccupancyMap(occupied, 0.1, (0.0, 0.0))


def drive(shield, position, velocity, command, steps=200):
    """Positions of the double integrator pushed by `command` through the shield."""
    position, velocity, path = np.array(position, float), np.array(velocity, float), []
    for _ in range(steps):
        accel = GAIN * np.clip(shield.filter(position, velocity, command) if shield else command, -1, 1)
        velocity = velocity + DT * accel
        position = position + DT * velocity
        path.append(position.copy())
    return np.array(path)


@pytest.mark.parametrize("speed", [0.0, 1.0, 3.0, 5.0])
def test_a_robot_told_to_drive_into_an_obstacle_stops_short_of_it(speed):
    shield = KeepOutShield(wall_at(3.0), keep_off=0.1, deceleration=12.0, tick=0.05)
    path = drive(shield, (1.0, 1.0), (speed, 0.0), np.array([1.0, 0.0]))
    assert path[:, 0].max() < 2.91  # the obstacle starts at x = 3.0; the robot keeps its radius, 0.1 m, off (1 cm slack)
    unshielded = drive(None, (1.0, 1.0), (speed, 0.0), np.array([1.0, 0.0]))
    assert unshielded[:, 0].max() > 3.0


def test_motion_along_an_obstacle_and_away_from_it_is_left_alone():
    shield = KeepOutShield(wall_at(3.0), keep_off=0.1, deceleration=12.0, tick=0.05)
    along = np.array([0.0, 0.7])
    assert np.allclose(shield.filter((2.7, 1.0), (0.0, 1.0), along), along)
    away = np.array([-1.0, 0.3])
    assert np.allclose(shield.filter((2.8, 1.0), (-0.5, 0.0), away), away)
    far = np.array([1.0, 0.0])
    assert np.allclose(shield.filter((0.5, 1.0), (1.0, 0.0), far), far)


def test_near_an_obstacle_the_push_toward_it_goes_and_the_sideways_part_stays():
    shield = KeepOutShield(wall_at(3.0), keep_off=0.1, deceleration=12.0, tick=0.05)
    command = shield.filter((2.8, 1.0), (2.0, 0.5), np.array([0.8, 0.6]))
    assert command[0] == pytest.approx(-1.0) and command[1] == pytest.approx(0.6)
    resting = shield.filter((2.93, 1.0), (0.0, 0.0), np.array([0.8, 0.6]))
    assert resting[0] == pytest.approx(0.0) and resting[1] == pytest.approx(0.6)


def test_a_shield_comes_only_with_cells_beyond_the_static_map():
    walls, with_obstacle = wall_at(3.5), wall_at(3.0)
    shield = keep_out_shield(with_obstacle, walls, Braking(12.0, 0.05))
    assert shield is not None and shield.clearance((2.9, 1.0))[0] == pytest.approx(0.1, abs=0.02)
    assert keep_out_shield(walls, walls, Braking(12.0, 0.05)) is None  # the walls the model knows are no obstacles
    with pytest.raises(ValueError, match="deceleration"):
        KeepOutShield(with_obstacle, 0.1, 0.0, 0.05)
