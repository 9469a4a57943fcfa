#!/usr/bin/env bash
# One-command set-up for pip users (no system ROS): a Python 3.11 venv with pinned torch, ROS 2 Kilted
# wheels, mujoco and pybullet; this package's msg/ and action/ built by rosidl into ./install; an
# activation file .venv/diffuser_env.sh. Idempotent: each step is skipped when its inputs are unchanged.
#   bash scripts/setup.sh            # set up (or check) the environment
#   source .venv/diffuser_env.sh     # then use it in your shell
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
INSTALL="$ROOT/install"
cd "$ROOT"

die() { echo "diffuser_ros setup: ERROR: $*" >&2; exit 1; }
say() { echo "diffuser_ros setup: $*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
# Run a step only when the hash of its inputs differs from the stamp left by its last success.
stale() { [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; }

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

check_tools() {
  command -v cmake >/dev/null 2>&1 || die "cmake not found. Install it (Debian/Ubuntu: sudo apt-get install cmake) and re-run."
  command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 \
    || die "gcc/g++ not found. Install them (Debian/Ubuntu: sudo apt-get install build-essential) and re-run."
}

make_venv() {
  if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || die "$VENV uses $("$VENV/bin/python" --version 2>&1); the ROS 2 wheels need Python 3.11. Delete .venv and re-run."
    return
  fi
  local py
  py="$(find_python)" || die "Python 3.11 not found (the ROS 2 Kilted wheels are cp311-only). Install python3.11 or set PYTHON=/path/to/python3.11."
  say "creating $VENV with $py"
  "$py" -m venv "$VENV" || die "could not create a venv (Debian/Ubuntu: sudo apt-get install python3.11-venv)."
  touch "$VENV/COLCON_IGNORE"   # keep colcon from crawling the wheels' share/ folders
}

install_requirements() {
  local want stamp="$VENV/.requirements.sha256"
  want="$(hash_of requirements.txt constraints.txt)"
  stale "$stamp" "$want" || return 0
  say "installing pinned Python dependencies (about a minute)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements.txt -c constraints.txt
  echo "$want" > "$stamp"
}

# The ROS wheels' CMake export files name their build machine's Python; point them at this venv's.
patch_cmake_exports() {
  local stamp="$VENV/.cmake-patched" include purelib
  [ -f "$stamp" ] && return 0
  include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  purelib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  grep -rl --include='*.cmake' '/opt/python/cp311-cp311/' "$VENV/share" 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/include/python3.11#$include#g" \
           -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages#$purelib#g" "$f"
  done
  touch "$stamp"
}

build_interfaces() {
  local want stamp="$INSTALL/.interfaces.sha256"
  want="$(hash_of CMakeLists.txt package.xml msg/*.msg action/*.action "$VENV/.requirements.sha256")"
  stale "$stamp" "$want" || return 0
  say "building msg/ and action/ with rosidl (colcon)"
  # CMake refuses include paths inside the source tree, and the venv lives in the repo: build from a
  # staged copy of the interface sources instead.
  local src="$ROOT/build/interfaces_src/diffuser_ros"
  rm -rf "$src" && mkdir -p "$src" && cp -r CMakeLists.txt package.xml msg action "$src/"
  (
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    export PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" --log-base "$ROOT/log" build --base-paths "$src" --packages-select diffuser_ros \
      --build-base "$ROOT/build" --install-base "$INSTALL" --merge-install \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DDIFFUSER_INSTALL_PYTHON=OFF \
      -DBUILD_TESTING=OFF --no-warn-unused-cli
  ) > "$ROOT/log/colcon-build.txt" 2>&1 || { tail -40 "$ROOT/log/colcon-build.txt" >&2; die "interface build failed (full log: log/colcon-build.txt)"; }
  echo "$want" > "$stamp"
}

install_package() {
  local want stamp="$VENV/.package.sha256"
  want="$(hash_of setup.py)"
  stale "$stamp" "$want" || return 0
  say "installing diffuser_ros (editable) and its commands"
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" > "$ROOT/log/pip-editable.txt" 2>&1 \
    || { cat "$ROOT/log/pip-editable.txt" >&2; die "pip install -e . failed"; }
  echo "$want" > "$stamp"
}

write_activation() {
  local site
  site="$(ls -d "$INSTALL"/lib/python3.11/site-packages 2>/dev/null || true)"
  [ -n "$site" ] || die "interfaces not built: $INSTALL/lib/python3.11/site-packages is missing (see log/colcon-build.txt)."
  cat > "$VENV/diffuser_env.sh" <<ENV
# Generated by scripts/setup.sh: the venv, ROS 2 from the wheels, and this package's interfaces.
. "$VENV/bin/activate"
export AMENT_PREFIX_PATH="$INSTALL:$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$INSTALL:$VENV\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
export PYTHONPATH="$ROOT:$site\${PYTHONPATH:+:\$PYTHONPATH}"
export LD_LIBRARY_PATH="$INSTALL/lib:$VENV/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export DIFFUSER_ROS_ROOT="$ROOT"
# Simulation defaults: keep DDS discovery on this machine unless the user chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
ENV
}

check_tools
make_venv
mkdir -p "$ROOT/log"
install_requirements
patch_cmake_exports
build_interfaces
install_package
write_activation
# shellcheck disable=SC1091
. "$VENV/diffuser_env.sh"
python -c 'import rclpy, torch, mujoco, pybullet; from diffuser_ros.msg import Plan; from diffuser_ros.action import ReachGoal' >/dev/null \
  || die "the environment does not import (rclpy/torch/mujoco/pybullet/diffuser_ros interfaces); delete .venv install build and re-run."
say "ready (source .venv/diffuser_env.sh to use it in a shell)"
