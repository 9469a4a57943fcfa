"""Method apart from tasks, one concept per folder: the method folders import no task, planar-wing or
ROS code and no simulator, so they plan for any robot; the planar wing imports no task; no method
module speaks of mazes or arms; each task package loads its simulator only when its env or
evaluation is used."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "diffuser_core"
METHOD_FOLDERS = ("model", "sampling", "guidance", "planning", "data", "training")
SHARED_MODULES = ("checkpoint", "config", "settings", "scores", "scenario", "plotting")  # used by every folder
APPLICATION_MODULES = {"cli"}  # the command line glues method and tasks together
SIMULATORS = ("mujoco", "pybullet", "pybullet_data", "pybullet_utils")
ROS = ("rclpy", "diffuser_ros", "geometry_msgs", "nav_msgs", "sensor_msgs", "std_msgs", "ament_index_python")
TASK_WORDS = re.compile(r"\b(maze|mazes|maze2d|u-maze|kuka|arm|arms|iiwa)\b", re.IGNORECASE)


def method_modules() -> list[Path]:
    """Every module of the method folders and the shared top-level modules."""
    folders = [path for folder in METHOD_FOLDERS for path in (CORE / folder).glob("*.py")]
    return sorted(folders + [CORE / f"{name}.py" for name in SHARED_MODULES])


def planar_modules() -> list[Path]:
    return sorted((CORE / "planar").glob("*.py"))


def imported_names(path: Path, package: str | None = None) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def forbidden(names: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if any(name == p or name.startswith(p + ".") for p in prefixes))


def test_the_core_is_in_folders_by_concept_each_saying_what_it_holds():
    assert {path.stem for path in CORE.glob("*.py")} <= {*SHARED_MODULES, *APPLICATION_MODULES, "__init__"}
    for folder in (*METHOD_FOLDERS, "planar", "tasks"):
        init = CORE / folder / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{folder}/ says what it holds"
    assert {"unet", "diffusion", "samplers", "conditioning", "guides", "planner", "receding", "trainer"} <= {
        path.stem for path in method_modules()}


@pytest.mark.parametrize("path", method_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_method_modules_import_no_task_planar_or_ros_code_or_simulator(path):
    prefixes = ("diffuser_core.tasks", "diffuser_core.planar", *SIMULATORS, *ROS)
    offenders = forbidden(imported_names(path), prefixes)
    assert not offenders, f"{path.name} is method code but imports {offenders}"


@pytest.mark.parametrize("path", [*method_modules(), *[p for folder in METHOD_FOLDERS
                                                       for p in [CORE / folder / "__init__.py"]]],
                         ids=lambda p: str(p.relative_to(CORE)))
def test_method_modules_speak_of_no_maze_or_arm(path):
    mentions = sorted({match.group(0) for match in TASK_WORDS.finditer(path.read_text())})
    assert not mentions, f"{path.relative_to(CORE)} mentions {mentions}: task knowledge belongs in tasks/"


@pytest.mark.parametrize("path", planar_modules(), ids=lambda p: p.name)
def test_the_planar_wing_imports_no_task_or_ros_code_or_simulator(path):
    offenders = forbidden(imported_names(path), ("diffuser_core.tasks", *SIMULATORS, *ROS))
    assert not offenders, f"planar/{path.name} imports {offenders}"


def test_the_import_check_catches_task_planar_and_ros_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from ..tasks.maze2d.env import Maze2DEnv\nfrom ..planar import costmap\nimport pybullet\n"
                      "from rclpy.node import Node\n")
    names = imported_names(sample, package="diffuser_core.planning")
    assert forbidden(names, ("diffuser_core.tasks", "diffuser_core.planar", *SIMULATORS, *ROS)) == [
        "diffuser_core.planar", "diffuser_core.planar.costmap", "diffuser_core.tasks.maze2d.env",
        "diffuser_core.tasks.maze2d.env.Maze2DEnv", "pybullet", "rclpy.node", "rclpy.node.Node"]
    assert TASK_WORDS.search("plans a maze route") and not TASK_WORDS.search("warm start blocks")


def loaded_after_import(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `statement`."""
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(result.stdout.split())


def test_the_planner_and_the_task_registry_load_no_simulator():
    loaded = loaded_after_import("import diffuser_core.planning.planner, diffuser_core.planning.receding, "
                                 "diffuser_core.planning.loading; "
                                 "from diffuser_core.tasks import get_task; get_task('maze2d'); get_task('kuka')")
    assert not loaded & set(SIMULATORS)
    assert not any(name.startswith(("diffuser_core.tasks", "diffuser_core.planar")) for name in loaded_after_import(
        "import diffuser_core.planning.receding, diffuser_core.training.trainer, diffuser_core.planning.loading"))


def test_each_task_names_its_loader_and_the_papers_numbers():
    from diffuser_core.tasks import get_task, resolve_loader

    for name in ("maze2d", "kuka"):
        task = get_task(name)
        assert task.name == name and resolve_loader(name) is task.load_episodes
        assert task.paper_scores and all(len(score) == 2 for score in task.paper_scores.values())
    with pytest.raises(ValueError, match="unknown task"):
        get_task("hopper")
