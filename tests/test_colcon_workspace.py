"""The repo builds as a normal ROS 2 package: `colcon build` in a workspace installs the interfaces,
both Python packages, the `ros2 run` executables and launch/config/rviz/checkpoints into share/."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return result.stdout.split()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    colcon = VENV / "bin" / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this environment (run scripts/setup.sh)")
    workspace = tmp_path_factory.mktemp("ws")
    source = workspace / "src" / "diffuser_ros"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    env = {**os.environ, "AMENT_PREFIX_PATH": str(VENV), "CMAKE_PREFIX_PATH": str(VENV),
           "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(colcon), "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
                             "-DBUILD_TESTING=OFF"], cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workspace / "install" / "diffuser_ros"


def test_executables_and_share_files_are_installed(workspace):
    executables = {path.name for path in (workspace / "lib" / "diffuser_ros").iterdir()}
    assert executables == {path.name for path in (ROOT / "scripts" / "nodes").iterdir()}
    share = workspace / "share" / "diffuser_ros"
    for relative in ("launch/maze2d.launch.py", "config/maze2d_umaze.yaml", "rviz/maze2d.rviz", "foxglove/maze2d_umaze.json",
                     "checkpoints/maze2d_umaze.safetensors", "msg/Plan.msg", "action/ReachGoal.action"):
        assert (share / relative).is_file(), relative


def test_installed_packages_import_and_find_their_share_folder(workspace):
    site = workspace / "lib" / "python3.11" / "site-packages"
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": f"{workspace}{os.pathsep}{VENV}",
           "LD_LIBRARY_PATH": f"{workspace / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"}
    env.pop("DIFFUSER_ROS_ROOT", None)
    code = ("import diffuser_ros, diffuser_core; from diffuser_ros.msg import Plan; "
            "from diffuser_ros.action import ReachGoal; from diffuser_core.scenario import package_root; "
            "print(diffuser_ros.__file__); print(diffuser_core.__file__); print(package_root())")
    result = subprocess.run([sys.executable, "-c", code], cwd=workspace.parent, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ros_file, core_file, root = result.stdout.split()
    assert ros_file.startswith(str(site)) and core_file.startswith(str(site))
    assert Path(root) == workspace / "share" / "diffuser_ros"
