"""The point-robot planner's parameters: its own (NodeSettings) and the core's settings of the loop,
the planner and the map, as one table (name -> default, name -> meaning) and one check."""
from __future__ import annotations

from dataclasses import dataclass

from diffuser_core.config import resolve_device
from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planning.loading import PlanningSettings
from diffuser_core.planning.receding import LoopSettings
from diffuser_core.settings import check_settings, from_parameters, setting
from diffuser_ros.adapters import ROBOT_MODELS
from diffuser_ros.managed import ParameterError
from diffuser_ros.parameters import parameter_table
from diffuser_ros.robot_messages import COMMAND_KINDS, STATE_KINDS


@dataclass(frozen=True)
class NodeSettings:
    """The node's own parameters (the loop's, the planner's and the map's are the core's settings).
    Defaults are the shipped U-Maze scenario's (config/maze2d_umaze.yaml; a test keeps them equal),
    except autostart: a bare node waits to be configured, as nav2's do."""

    autostart: bool = setting(False, "configure and activate on start (nav2's lifecycle-manager behaviour)")
    checkpoint: str = setting("checkpoints/maze2d_umaze.safetensors",
                              "diffusion checkpoint (.safetensors); a subgoal (stride > 1) model plans hierarchically")
    low_level_checkpoint: str = setting("", "hierarchical checkpoints: a low-level Diffuser for the segments between "
                                            "subgoals; empty: interpolate them")
    robot: str = setting("point_mass", "the robot's model: point_mass | diff_drive (or kuka_arm, the arm planner)",
                         read_only=True)
    state_message: str = setting("odometry", "message of the robot's state: odometry (on odom) | joint_state "
                                             "(on joint_states)", choices=tuple(STATE_KINDS))
    state_fields: tuple = setting(("x", "y", "velocity_x", "velocity_y"), "its fields that make the planner's state, "
                                  "in order (odometry: x y yaw cos_yaw sin_yaw velocity_x velocity_y linear_x ...; "
                                  "joint_state: position:<joint>, velocity:<joint>)")
    command_message: str = setting("accel", "message of the robot's command: accel (cmd_accel) | twist (cmd_vel) | "
                                            "joint_trajectory", choices=tuple(COMMAND_KINDS))
    command_fields: tuple = setting(("linear_x", "linear_y"), "its fields that carry the planner's command, in order")
    goal_fields: tuple = setting(("x", "y", "velocity_x", "velocity_y"), "state fields a goal pose fixes (velocities "
                                 "at rest); the others are left to the plan")
    maze: str = setting("umaze", "layout whose walls refuse goals (umaze | medium | large | room); empty: no map")
    frame_id: str = setting("map", "frame of odom, goals and plans")
    control_rate: float = setting(100.0, "Hz: commands to the robot", 0.1, 10000.0)
    command_limit: float = setting(1.0, "largest command magnitude per axis", 0.001, live=True)
    command_limits: tuple = setting((0.0,), "largest command magnitude of each command field; [0.0]: command_limit "
                                    "for every one", live=True)
    device: str = setting("auto", "torch device: auto | cpu | cuda | cuda:N")
    planning_delay: float = setting(0.0, "s added to every plan, to try a slow planner", 0.0, 60.0, live=True)

    def __post_init__(self):
        check_settings(self)
        if self.robot not in ROBOT_MODELS:
            raise ValueError(f"robot='{self.robot}' is not one of {sorted(ROBOT_MODELS)} (or 'kuka_arm', the arm planner)")
        try:
            resolve_device(self.device)
        except ValueError:
            raise ValueError(f"device='{self.device}' is not auto, cpu, cuda or cuda:N") from None

    def limits(self) -> tuple[float, ...]:
        """The command limits: command_limits, or command_limit for every command field."""
        return (self.command_limit,) if tuple(self.command_limits) == (0.0,) else tuple(self.command_limits)


SETTINGS = (NodeSettings, PlanningSettings, LoopSettings, AvoidanceSettings)
PARAMETERS, PARAMETER_INFO = parameter_table(*SETTINGS)


def check_parameters(p: dict) -> tuple:
    """The parameters as (NodeSettings, PlanningSettings, LoopSettings, AvoidanceSettings); ParameterError
    naming the first invalid one."""
    try:
        return tuple(from_parameters(cls, p) for cls in SETTINGS)
    except ValueError as error:
        raise ParameterError(str(error)) from error
