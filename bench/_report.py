"""Shared helpers of the bench scripts: how a result says where it was measured, and where it goes.

Every result records the exact command, the machine (platform, CPUs, load, torch version and
threads, device, GPU), and the seed. The performance scripts each own one section of
results/perf.md, so running one script again replaces its section and leaves the others.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PERF_TITLE = "# Performance benchmarks"


def command_line(script: str, argv=None) -> str:
    """The command that produced the results, as anyone runs it from the repository root: `python`,
    the script and its options (sys.argv when the script runs as a program, else `script` and
    `argv`), with this checkout's paths made relative."""
    words = sys.argv if argv is None else [str(script), *argv]
    return shlex.join(["python", *(relative_to_root(word) for word in words)])


def relative_to_root(word: str) -> str:
    """`word` with the repository root's absolute path taken off (paths inside the checkout)."""
    root = str(ROOT) + os.sep
    return word.replace(root, "") if root in word else word


def machine_info(device) -> dict:
    """Where the numbers were measured: platform, CPU count and load, torch version and
    threads, device, and the GPU name when a CUDA device is used."""
    device = str(device)
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": device,
            "cuda_available": torch.cuda.is_available()}
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available() and device != "cpu":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes (a checkpoint's identity in results)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    """The checkout's commit, with '-dirty' when tracked files differ from it ('unknown' outside git)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def provenance(checkpoints) -> dict:
    """What made a result: the git commit and each checkpoint's sha256, by path."""
    return {"git_commit": git_commit(),
            "checkpoint_sha256": {str(path): file_sha256(path) for path in checkpoints if path}}


def provenance_lines(record: dict) -> list[str]:
    """Markdown lines of a one-checkpoint record: checkpoint hash and git commit, command, machine."""
    return [f"- checkpoint sha256 {next(iter(record['checkpoint_sha256'].values()))[:12]}...; git commit "
            f"{record['git_commit'][:12]}", f"- command: `{record['command']}`",
            f"- machine: {machine_line(record['machine'])}"]


def machine_line(machine: dict) -> str:
    """One markdown line describing the machine of a record."""
    gpu = machine.get("gpu") or ("no GPU used" if machine["cuda_available"] else "no GPU available")
    load = f", load average {machine['load_average_1m']}" if "load_average_1m" in machine else ""
    return (f"{machine['platform']}, {machine['processor']}, {machine['cpu_count']} CPUs{load}, "
            f"python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads), "
            f"device {machine['device']}, {gpu}")


@dataclass(frozen=True)
class Target:
    """One acceptance target of the issue: what it asks, what was measured, whether it holds."""

    name: str
    requirement: str
    measured: str
    met: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "requirement": self.requirement, "measured": self.measured,
                "met": bool(self.met)}


def targets_table(targets: list[Target]) -> list[str]:
    """Markdown table rows: target, requirement, measured value, met yes/NO."""
    rows = ["| target | requirement | measured | met |", "|---|---|---|---|"]
    rows += [f"| {t.name} | {t.requirement} | {t.measured} | {'yes' if t.met else '**NO**'} |"
             for t in targets]
    return rows


def write_json(path, record: dict) -> Path:
    """Write a record as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def write_report(path, record: dict, markdown: str) -> Path:
    """Write a benchmark's record as JSON at `path` and its table as markdown beside it; say where."""
    path = write_json(path, record)
    path.with_suffix(".md").write_text(markdown)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return path


def update_section(path, name: str, body: str) -> Path:
    """Replace (or append) the section `name` of a markdown file, keeping the other sections.
    Sections are delimited by <!-- perf:name --> ... <!-- /perf:name --> comments."""
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"section name must be lowercase letters, digits, '-' or '_', got {name!r}")
    path = Path(path)
    start, end = f"<!-- perf:{name} -->", f"<!-- /perf:{name} -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else f"{PERF_TITLE}\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = f"{text.rstrip()}\n\n{section}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def target_lines(targets: list[dict]) -> str:
    """One console line per target: MET or NOT MET, its name and the measured value."""
    return "\n".join(f"{'MET    ' if t['met'] else 'NOT MET'} {t['name']}: {t['measured']}" for t in targets)


def require_at_least_one(args, names, optional=False) -> None:
    """ValueError naming the first option among `names` below 1 (None allowed when optional)."""
    for name in names:
        value = getattr(args, name)
        if (value is not None or not optional) and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def run_cli(parser, argv, script: str, run, check=None) -> int:
    """The bench scripts' main: parse, check and run (a ValueError is a usage error naming the
    option), then print one line per target."""
    args = parser.parse_args(argv)
    try:
        if check is not None:
            check(args)
        record = run(args, command_line(script, argv))
    except ValueError as error:
        parser.error(str(error))
    print(target_lines(record["targets"]))
    return 0
