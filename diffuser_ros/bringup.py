"""Start a scenario's nodes as processes for pip installs (where `ros2 launch` is not available).

Reads the same `config/<scenario>.yaml` as `launch/*.launch.py`, starts one process per node with that
file as its parameters, optionally records the run to MCAP (--record) and serves a live view to Foxglove
(--foxglove), and stops everything on Ctrl-C.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffuser_core.scenario import (
    EXECUTABLES,
    ScenarioError,
    load_overrides,
    load_scenario,
    merged_parameters,
    resolve_config,
    write_params_file,
)

DEFAULT_FOXGLOVE_PORT = 8765  # Foxglove's default for a WebSocket connection


def namespace_remap(namespace: str) -> list[str]:
    """The ROS arguments that put a node in `namespace` (none for the root)."""
    return ["-r", f"__ns:=/{namespace.strip('/')}"] if namespace.strip("/") else []


def node_command(executable: str, name: str, config: Path, extra_args: list[str], namespace: str = "") -> list[str]:
    """The command line that runs one node of the scenario (in `namespace`, when given)."""
    return [sys.executable, "-m", "diffuser_ros.launcher", EXECUTABLES[executable], "--ros-args",
            "-r", f"__node:={name}", *namespace_remap(namespace), "--params-file", str(config), *extra_args]


def tool_command(module: str, arguments: list[str], namespace: str, use_sim_time: bool | None) -> list[str]:
    """The command line of a tool beside the scenario's nodes (recorder, live view), in its namespace."""
    clock = ["-p", "use_sim_time:=true"] if use_sim_time else []
    return [sys.executable, "-m", "diffuser_ros.launcher", module, *arguments, "--ros-args",
            *namespace_remap(namespace), *clock]


class Bringup:
    """A set of node processes started together and stopped together."""

    def __init__(self, config: str, only: list[str] | None = None, record: str | None = None,
                 ros_args: list[str] | None = None, quiet: bool = False, namespace: str = "",
                 params_file: str | None = None, use_sim_time: bool | None = None, foxglove_port: int | None = None):
        self.config = resolve_config(config)
        self.namespace = namespace
        self.overrides = load_overrides(params_file)
        self.use_sim_time = use_sim_time
        self.nodes = [spec for spec in load_scenario(self.config) if not only or spec.name in only]
        if only and len(self.nodes) != len(only):
            known = [spec.name for spec in load_scenario(self.config)]
            raise ScenarioError(f"--only names nodes not in {self.config.name}: {sorted(set(only) - set(known))}")
        self.record = record
        self.foxglove_port = foxglove_port
        self.tools = self.tool_commands()
        self.ros_args = ros_args or []
        self.output = subprocess.DEVNULL if quiet else None
        self.processes: list[subprocess.Popen] = []

    def start(self) -> "Bringup":
        parameters = merged_parameters(self.nodes, self.overrides, self.use_sim_time)
        self.params_dir = tempfile.TemporaryDirectory(prefix="bringup_")
        params_file = write_params_file(parameters, self.namespace, Path(self.params_dir.name) / "parameters.yaml")
        commands = [node_command(spec.executable, spec.name, params_file, self.ros_args, self.namespace)
                    for spec in self.nodes]
        for _, module, arguments in self.tools:
            commands.append(tool_command(module, arguments, self.namespace, self.use_sim_time))
        for command in commands:
            # Children start with Ctrl-C ignored: a SIGINT while the interpreter itself initializes would
            # abort it with "Fatal Python error". The launcher turns Ctrl-C back on as its first act,
            # and stop() repeats SIGINT until each child has exited.
            self.processes.append(subprocess.Popen(command, stdout=self.output, stderr=self.output,
                                                   preexec_fn=_ignore_sigint))
        return self

    def failed(self) -> list[str]:
        """Names (with exit codes) of processes that have exited with an error."""
        names = [spec.name for spec in self.nodes] + [name for name, _, _ in self.tools]
        return [f"{name} (exit {process.returncode})" for name, process in zip(names, self.processes)
                if process.poll() not in (None, 0)]

    def tool_commands(self) -> list[tuple[str, str, list[str]]]:
        """(name, module, arguments) of the tools asked for: the MCAP recorder, the Foxglove view."""
        tools = [("recorder", "diffuser_ros.recorder", [self.record])] if self.record else []
        if self.foxglove_port is not None:
            tools.append(("foxglove_view", "diffuser_ros.foxglove_view",
                          ["--robot", self.robot(), "--port", str(self.foxglove_port)]))
        return tools

    def robot(self) -> str:
        """The scenario's robot (its planner's `robot` parameter)."""
        planners = [spec.parameters.get("robot", "point_mass") for spec in load_scenario(self.config)
                    if spec.name == "diffuser_planner"]
        return planners[0] if planners else "point_mass"

    def node_index(self, name: str) -> int:
        """Where the node `name` stands among the started processes; ScenarioError when it is not started here."""
        names = [spec.name for spec in self.nodes]
        if name not in names:
            raise ScenarioError(f"{name} is not a node started from {self.config.name} ({', '.join(names)})")
        return names.index(name)

    def exited(self, name: str) -> bool:
        """Whether the node `name` has exited (cleanly or not)."""
        return self.processes[self.node_index(name)].poll() is not None

    def check_running(self) -> None:
        """Raise RuntimeError naming the processes that have exited with an error (for clients that
        wait on a node: stop waiting once it is gone)."""
        if self.failed():
            raise RuntimeError(f"{', '.join(self.failed())} exited (run with --verbose for its log)")

    def stop(self, timeout_s: float = 30.0, resend_s: float = 1.0) -> None:
        """SIGINT every process (as Ctrl-C would), again every `resend_s` to those still starting
        up (they ignore it until their launcher runs), then kill what has not exited in time. The
        time is generous: on a loaded 2-core machine a node's start-up has taken over 10 s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = [process for process in self.processes if process.poll() is None]
            if not running:
                return
            for process in running:
                process.send_signal(signal.SIGINT)
            resend_at = min(deadline, time.monotonic() + resend_s)
            while time.monotonic() < resend_at and any(process.poll() is None for process in running):
                time.sleep(0.02)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if getattr(self, "params_dir", None) is not None:
            self.params_dir.cleanup()
            self.params_dir = None

    def __enter__(self) -> "Bringup":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bringup", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="scenario name (e.g. maze2d_umaze) or path to a scenario YAML")
    parser.add_argument("--only", nargs="+", metavar="NODE", help="start only these nodes")
    parser.add_argument("--record", metavar="FILE.mcap", help="record the run's topics to an MCAP file")
    parser.add_argument("--autostart", action=argparse.BooleanOptionalAction, default=None,
                        help="configure and activate managed (lifecycle) nodes on start; default: the YAML's "
                             "'autostart' (--no-autostart leaves them unconfigured for `change_state`)")
    parser.add_argument("--namespace", default="", help="run every node in this namespace (e.g. robot1): its "
                        "relative topics and actions move there, so two robots can run side by side")
    parser.add_argument("--params-file", help="a ros__parameters YAML of overrides merged onto the scenario's "
                        "(keys: node names, or /** for all)")
    parser.add_argument("--use-sim-time", action=argparse.BooleanOptionalAction, default=None,
                        help="every node reads time from /clock (start the simulator with publish_clock)")
    parser.add_argument("--foxglove", nargs="?", type=int, const=DEFAULT_FOXGLOVE_PORT, metavar="PORT",
                        help=f"serve a live view on ws://127.0.0.1:PORT for Foxglove (default port "
                             f"{DEFAULT_FOXGLOVE_PORT}); its Publish panel or 3D pose tool sends goal_pose")
    parser.add_argument("--exit-with", metavar="NODE", help="stop everything (the recording included) once this node "
                        "has exited, e.g. a demonstrator that ends when its goals are done")
    parser.add_argument("--ros-args", nargs=argparse.REMAINDER, default=[],
                        help="extra ROS arguments for every node (e.g. -p use_sim_time:=true)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C stops everything, even when this process inherited SIGINT ignored (as every command
    # started with `&` from a non-interactive shell does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(argv)
    try:
        ros_args = list(args.ros_args)
        if args.autostart is not None:
            ros_args = ["-p", f"autostart:={str(args.autostart).lower()}", *ros_args]  # nodes without it ignore it
        bringup = Bringup(args.config, args.only, args.record, ros_args, namespace=args.namespace,
                          params_file=args.params_file, use_sim_time=args.use_sim_time,
                          foxglove_port=args.foxglove)
        if args.exit_with:
            bringup.node_index(args.exit_with)  # an unknown node is refused before anything starts
    except ScenarioError as error:
        print(f"bringup: {error}", file=sys.stderr)
        return 2
    print(f"bringup: starting {', '.join(spec.name for spec in bringup.nodes)} from {bringup.config}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        bringup.start()  # a Ctrl-C between two starts still stops the ones already started
        while not bringup.failed() and any(p.poll() is None for p in bringup.processes):
            if args.exit_with and bringup.exited(args.exit_with):
                print(f"bringup: {args.exit_with} exited; stopping the rest", flush=True)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        bringup.stop()
    failed = bringup.failed()
    if failed:
        print(f"bringup: {', '.join(failed)} exited with an error; stopped the rest", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
