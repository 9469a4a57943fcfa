"""Send a StackBlocks goal to the arm planner from the command line, print feedback, exit non-zero on failure.

    send_stack_goal                                  # any four-block tower (unconditional stacking)
    send_stack_goal red:green green:blue blue:yellow # this tower: red on green on blue on yellow
    send_stack_goal --rearrange red:blue             # only these relations (TOP:BOTTOM)
"""
from __future__ import annotations

import argparse
import sys

from diffuser_ros.action import StackBlocks
from diffuser_ros.msg import Relation
from diffuser_ros.send_goal import run_from_command_line


def parse_relation(text: str) -> tuple[str, str]:
    """'TOP:BOTTOM' → (top, bottom); argparse shows the error for anything else."""
    top, separator, bottom = text.partition(":")
    if not separator or not top or not bottom:
        raise argparse.ArgumentTypeError(f"a relation is TOP:BOTTOM (e.g. red:green), got {text!r}")
    return top, bottom


def make_goal(relations: list[tuple[str, str]], rearrange: bool, timeout: float) -> StackBlocks.Goal:
    return StackBlocks.Goal(task="rearrange" if rearrange else "stack", timeout=timeout,
                            relations=[Relation(top=top, bottom=bottom) for top, bottom in relations])


def print_feedback(message) -> None:
    feedback = message.feedback
    print(f"  relations {feedback.satisfied}/{feedback.total}   plan {feedback.plan_time_ms:7.1f} ms   "
          f"{feedback.status}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="send_stack_goal", description=__doc__.splitlines()[0])
    parser.add_argument("relations", nargs="*", type=parse_relation, metavar="TOP:BOTTOM",
                        help="on-top relations; none: any tower")
    parser.add_argument("--rearrange", action="store_true",
                        help="task 'rearrange' (any possible relation set) instead of 'stack' (one tower)")
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds before the planner aborts (0: none)")
    parser.add_argument("--action", default="stack_blocks", help="action name (relative, remappable)")
    parser.add_argument("--quiet", action="store_true", help="do not print feedback")
    args, ros_args = parser.parse_known_args(argv)
    if args.rearrange and not args.relations:
        parser.error("--rearrange needs at least one TOP:BOTTOM relation")
    return run_from_command_line("send_stack_goal", make_goal(args.relations, args.rearrange, args.timeout),
                                 args.action, None if args.quiet else print_feedback, ros_args,
                                 lambda result: f"score={result.score:.1f} stages={result.replans}", StackBlocks)


if __name__ == "__main__":
    sys.exit(main())
