"""Package hygiene: package.xml is valid format 3 and names every runtime dependency the code imports;
diffuser_core imports no ROS; every executable and console script resolves to real code."""
import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Import name -> the package.xml dependency that provides it.
IMPORT_TO_DEPENDENCY = {
    "rclpy": "rclpy", "builtin_interfaces": "builtin_interfaces", "std_msgs": "std_msgs",
    "geometry_msgs": "geometry_msgs", "nav_msgs": "nav_msgs", "sensor_msgs": "sensor_msgs",
    "visualization_msgs": "visualization_msgs", "trajectory_msgs": "trajectory_msgs",
    "diagnostic_msgs": "diagnostic_msgs", "lifecycle_msgs": "lifecycle_msgs", "action_msgs": "action_msgs",
    "launch": "launch", "launch_ros": "launch_ros", "ament_index_python": "ament_index_python",
    "rosgraph_msgs": "rosgraph_msgs", "rcl_interfaces": "rcl_interfaces",
    "numpy": "python3-numpy", "yaml": "python3-yaml", "h5py": "python3-h5py",
    "matplotlib": "python3-matplotlib", "tqdm": "python3-tqdm", "torch": "python3-torch",
    "safetensors": "python3-safetensors-pip", "mujoco": "python3-mujoco-pip",
    "pybullet": "python3-pybullet-pip", "pybullet_data": "python3-pybullet-pip",
    "pybullet_utils": "python3-pybullet-pip",
    "transforms3d": "python3-transforms3d", "mcap": "python3-mcap-pip", "mcap_ros2": "python3-mcap-ros2-support-pip",
    "rosbags": "python3-rosbags-pip", "foxglove": "python3-foxglove-sdk-pip",
    "onnxruntime": "python3-onnxruntime-pip", "onnx": "python3-onnx-pip",
}
ROS_MODULES = {name for name, dep in IMPORT_TO_DEPENDENCY.items() if not dep.startswith("python3-")} | {
    "rcl_interfaces", "rosidl_runtime_py", "diffuser_ros"}


def imported_top_level_modules(package_dir: Path) -> dict[str, list[str]]:
    """Map each top-level module imported anywhere under package_dir to the files importing it."""
    found: dict[str, list[str]] = {}
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def local_or_stdlib(name: str) -> bool:
    return name in sys.stdlib_module_names or name in {"diffuser_core", "diffuser_ros", "__future__"}


def test_package_xml_is_valid_format_3():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    package = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    package.validate()
    assert package.name == "diffuser_ros" and package.package_format == 3
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]


def test_package_xml_lists_every_runtime_import():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    package = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    declared = {dep.name for dep in package.exec_depends + package.build_export_depends}
    imports = imported_top_level_modules(ROOT / "diffuser_core") | imported_top_level_modules(ROOT / "diffuser_ros")
    unknown = sorted(name for name in imports if not local_or_stdlib(name) and name not in IMPORT_TO_DEPENDENCY)
    assert not unknown, f"imports with no known package.xml dependency (add to IMPORT_TO_DEPENDENCY): {unknown}"
    missing = sorted({IMPORT_TO_DEPENDENCY[name] for name in imports if name in IMPORT_TO_DEPENDENCY} - declared)
    assert not missing, f"package.xml lacks dependencies the code imports: {missing}"


def test_diffuser_core_imports_no_ros():
    imports = imported_top_level_modules(ROOT / "diffuser_core")
    offenders = {name: files for name, files in imports.items() if name in ROS_MODULES or name.endswith("_msgs")}
    assert not offenders, f"diffuser_core must not import ROS: {offenders}"


def console_scripts():
    source = (ROOT / "setup.py").read_text()
    namespace: dict = {}
    tree = ast.parse(source)
    nodes = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "NODES")
    exec(compile(ast.Module([nodes], []), "setup.py", "exec"), namespace)
    return namespace["NODES"]


def test_ros2_run_executables_match_console_scripts():
    executables = {path.name for path in (ROOT / "scripts" / "nodes").iterdir()}
    assert executables == set(console_scripts())
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for name in executables:
        assert f"scripts/nodes/{name}" in cmake, f"{name} is not installed by CMakeLists.txt"


@pytest.mark.parametrize("name", sorted(console_scripts()))
def test_console_script_targets_exist(name):
    module_name, function = console_scripts()[name].split(":")
    if importlib.util.find_spec(module_name) is None:
        pytest.fail(f"console script {name} points at missing module {module_name}")
    assert callable(getattr(importlib.import_module(module_name), function))
