"""scripts/setup.sh explains bad set-up states instead of failing obscurely."""
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_setup(root: Path, path_dirs: list[Path], **env) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True,
                          env={"PATH": os.pathsep.join(map(str, path_dirs)), "HOME": str(root), **env}, timeout=60)


def tool_dir(tmp_path: Path, names: list[str]) -> Path:
    """A PATH folder holding only the named commands (links to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        real = shutil.which(name)
        if real:
            (folder / name).symlink_to(real)
    return folder


def copy_of_scripts(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    return root


BASIC = ["bash", "cat", "sha256sum", "cut", "dirname", "mkdir", "touch", "grep", "sed", "rm", "cp", "ls", "tail"]


def test_missing_cmake_is_named(tmp_path):
    result = run_setup(copy_of_scripts(tmp_path), [tool_dir(tmp_path, BASIC + ["gcc", "g++"])])
    assert result.returncode != 0
    assert "cmake not found" in result.stderr and "apt-get install cmake" in result.stderr


def test_missing_compiler_is_named(tmp_path):
    result = run_setup(copy_of_scripts(tmp_path), [tool_dir(tmp_path, BASIC + ["cmake"])])
    assert result.returncode != 0 and "gcc/g++ not found" in result.stderr


def test_wrong_python_version_is_named(tmp_path):
    root = copy_of_scripts(tmp_path)
    tools = tool_dir(tmp_path, BASIC + ["cmake", "gcc", "g++"])
    fake = tools / "python3.10"
    fake.write_text("#!/bin/bash\nexit 1\n")  # answers the version check with 'not 3.11'
    fake.chmod(0o755)
    result = run_setup(root, [tools], PYTHON=str(fake))
    assert result.returncode != 0 and "Python 3.11 not found" in result.stderr


def test_existing_venv_with_another_python_is_refused(tmp_path):
    root = copy_of_scripts(tmp_path)
    tools = tool_dir(tmp_path, BASIC + ["cmake", "gcc", "g++"])
    venv_python = root / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/bash\n[ \"$1\" = --version ] && echo 'Python 3.10.9'\nexit 1\n")
    venv_python.chmod(0o755)
    result = run_setup(root, [tools])
    assert result.returncode != 0
    assert "Python 3.10.9" in result.stderr and "need Python 3.11" in result.stderr
