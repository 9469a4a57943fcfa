"""Scenario files: one `config/<scenario>.yaml` names the nodes to start and holds their parameters.

Each top-level key is a node name, which is also the executable that runs it, and its
`ros__parameters` configure it. The bringup command, the ROS 2 launch files and the offline
evaluations all read scenarios through this module, so the YAML is the one source of a robot
setting. Plain YAML: no ROS is needed to read one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

# Executable name -> the module whose main() runs it (setup.py's console scripts name the same).
EXECUTABLES = {
    "diffuser_planner": "diffuser_ros.planner_node",
    "maze2d_sim": "diffuser_ros.maze2d_sim_node",
    "kuka_sim": "diffuser_ros.kuka_sim_node",
    "diffdrive_sim": "diffuser_ros.diffdrive_sim_node",
    "diffdrive_expert": "diffuser_ros.diffdrive_expert_node",
}
# Executables that are managed (lifecycle) nodes with an `autostart` parameter.
MANAGED = {"diffuser_planner"}


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the reason."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of a scenario: which executable to run, under which name, with which parameters."""

    executable: str
    name: str
    parameters: dict


def package_root() -> Path:
    """Where config/, launch/ and checkpoints/ live: $DIFFUSER_ROS_ROOT, the source tree (pip set-up), or
    the package's share folder in a sourced ROS 2 workspace (an AMENT_PREFIX_PATH entry)."""
    if os.environ.get("DIFFUSER_ROS_ROOT"):
        return Path(os.environ["DIFFUSER_ROS_ROOT"])
    source_root = Path(__file__).resolve().parents[1]
    if (source_root / "config").is_dir():
        return source_root
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        share = Path(prefix) / "share" / "diffuser_ros"
        if prefix and (share / "config").is_dir():
            return share
    raise ScenarioError("cannot find diffuser_ros's config/: set DIFFUSER_ROS_ROOT or source the workspace")


def resolve_config(name_or_path: str) -> Path:
    """Accept a path, or a scenario name such as `maze2d_umaze` found under config/."""
    candidates = [Path(name_or_path), package_root() / "config" / name_or_path,
                  package_root() / "config" / f"{name_or_path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(p.stem for p in (package_root() / "config").glob("*.yaml"))
    raise ScenarioError(f"no scenario file '{name_or_path}' (available: {', '.join(available)})")


def resolve_data_path(path: str) -> Path:
    """A relative checkpoint/data path is taken from the working directory, else the package root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return package_root() / candidate


def load_scenario(config_path: str | Path) -> list[NodeSpec]:
    """Parse a scenario YAML into the nodes it starts, checking its shape."""
    path = Path(config_path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"cannot read scenario {path}: {error}") from error
    if not isinstance(document, dict) or not document:
        raise ScenarioError(f"scenario {path} must map node names to their ros__parameters")
    nodes = []
    for name, section in document.items():
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ScenarioError(f"scenario {path}: node '{name}' needs a 'ros__parameters' mapping")
        if name not in EXECUTABLES:
            raise ScenarioError(f"scenario {path}: '{name}' is not a node of this package "
                                f"(known: {', '.join(EXECUTABLES)})")
        nodes.append(NodeSpec(name, name, section["ros__parameters"]))
    return nodes


def planner_parameters(scenario: str) -> dict:
    """The `diffuser_planner` ros__parameters of a scenario (a name in config/ or a path)."""
    nodes = {node.name: node.parameters for node in load_scenario(resolve_config(scenario))}
    if "diffuser_planner" not in nodes:
        raise ValueError(f"scenario {scenario} has no diffuser_planner")
    return nodes["diffuser_planner"]


def load_overrides(path: str | Path | None) -> dict[str, dict]:
    """A params file of overrides (node name -> ros__parameters, like a scenario file; a `/**` key
    applies to every node): node name -> parameters. No path (None or ""): no overrides."""
    if not path:
        return {}
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"cannot read params file {path}: {error}") from error
    if not isinstance(document, dict):
        raise ScenarioError(f"params file {path} must map node names to their ros__parameters")
    overrides = {}
    for name, section in document.items():
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ScenarioError(f"params file {path}: '{name}' needs a 'ros__parameters' mapping")
        overrides[str(name).strip("/").split("/")[-1] if name != "/**" else "/**"] = section["ros__parameters"]
    return overrides


def merged_parameters(nodes: list[NodeSpec], overrides: dict[str, dict] | None = None,
                      use_sim_time: bool | None = None) -> dict[str, dict]:
    """Node name -> its scenario parameters with the overrides (for every node, then its own) and
    `use_sim_time` on top. With use_sim_time, a simulator (a node with `publish_clock`) becomes the
    clock: it publishes /clock and keeps its own wall-clock timers."""
    overrides = overrides or {}
    merged = {}
    for spec in nodes:
        parameters = {**spec.parameters, **overrides.get("/**", {}), **overrides.get(spec.name, {})}
        if use_sim_time is not None:
            parameters["use_sim_time"] = use_sim_time
            if use_sim_time and "publish_clock" in parameters:
                parameters["publish_clock"], parameters["use_sim_time"] = True, False
        merged[spec.name] = parameters
    return merged


def write_params_file(parameters: dict[str, dict], namespace: str, path: str | Path) -> Path:
    """A params file whose keys are the nodes' fully qualified names under `namespace` (a file keyed
    by bare node names would not match namespaced nodes)."""
    prefix = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
    document = {f"{prefix}/{name}": {"ros__parameters": values} for name, values in parameters.items()}
    path = Path(path)
    path.write_text(yaml.dump(document, Dumper=QuotedStringDumper, sort_keys=False))
    return path


class QuotedStringDumper(yaml.SafeDumper):
    """Writes every string quoted: ROS's params parser reads a bare y or n as a bool (YAML 1.1), so
    state_fields: [x, y] would not be a list of strings there."""


QuotedStringDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'"))
