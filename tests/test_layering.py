"""Method apart from tasks: the diffusion method imports no task code and no simulator, so it plans
for any robot; each task package loads its simulator only when its env or evaluation is used."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "diffuser_core"
APPLICATION_MODULES = {"cli"}  # the command line glues method and tasks together
SIMULATORS = ("mujoco", "pybullet", "pybullet_data", "pybullet_utils")


def method_modules() -> list[Path]:
    """Every module of diffuser_core outside tasks/ that is not the command line."""
    return sorted(path for path in CORE.glob("*.py") if path.stem not in APPLICATION_MODULES | {"__init__"})


def imported_names(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against diffuser_core)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "diffuser_core" + (f".{base}" if base else "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_there_are_method_modules_to_check():
    stems = {path.stem for path in method_modules()}
    assert {"model", "diffusion", "samplers", "conditioning", "guides", "planner", "training",
            "checkpoint", "replanning", "hierarchy"} <= stems


@pytest.mark.parametrize("path", method_modules(), ids=lambda p: p.stem)
def test_method_modules_import_no_task_code_or_simulator(path):
    offenders = sorted(name for name in imported_names(path)
                       if name.startswith("diffuser_core.tasks") or name.split(".")[0] in SIMULATORS)
    assert not offenders, f"{path.name} is method code but imports {offenders}"


def test_the_import_check_catches_a_task_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from .tasks.maze2d.env import Maze2DEnv\nimport pybullet\n")
    assert {"diffuser_core.tasks.maze2d.env", "pybullet"} <= imported_names(sample)


def loaded_after_import(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `statement`."""
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(result.stdout.split())


def test_the_planner_and_the_task_registry_load_no_simulator():
    loaded = loaded_after_import("import diffuser_core.planner, diffuser_core.replanning, diffuser_core.hierarchy; "
                                 "from diffuser_core.tasks import get_task; get_task('maze2d'); get_task('kuka')")
    assert not loaded & set(SIMULATORS)
    assert not any(name.startswith("diffuser_core.tasks") for name in
                   loaded_after_import("import diffuser_core.planner, diffuser_core.training, diffuser_core.hierarchy"))


def test_each_task_names_its_loader_and_the_papers_numbers():
    from diffuser_core.tasks import get_task, resolve_loader

    for name in ("maze2d", "kuka"):
        task = get_task(name)
        assert task.name == name and resolve_loader(name) is task.load_episodes
        assert task.paper_scores and all(len(score) == 2 for score in task.paper_scores.values())
    with pytest.raises(ValueError, match="unknown task"):
        get_task("hopper")
