"""Planner health for /diagnostics (diagnostic_msgs/DiagnosticArray), as ROS 2 tools expect it."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class PlanningStats:
    """Plan latencies and completion times over a sliding window, plus overrun and failure counts."""

    def __init__(self, window: int = 200):
        self.latencies_ms: deque[float] = deque(maxlen=window)
        self.finished_at: deque[float] = deque(maxlen=window)
        self.plans = 0
        self.overruns = 0
        self.failures = 0

    def record(self, latency_ms: float, finished_at: float) -> None:
        self.latencies_ms.append(latency_ms)
        self.finished_at.append(finished_at)
        self.plans += 1

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.latencies_ms, percentile)) if self.latencies_ms else math.nan

    def achieved_rate_hz(self, now: float, span_s: float = 5.0) -> float:
        """Plans per second over the last `span_s` seconds (0 when none)."""
        recent = [t for t in self.finished_at if now - t <= span_s]
        return len(recent) / span_s


def planner_status(name: str, stats: PlanningStats, now: float, requested_hz: float, device: str,
                   checkpoint: str, state_age_s: float, goal_active: bool,
                   lifecycle_state: str = "active", extra: dict | None = None) -> DiagnosticStatus:
    """OK normally; WARN when a goal runs on stale state or plans overran; ERROR after a planner fault.
    A managed node that is not active says which lifecycle state it is in; `extra` adds values
    (e.g. the arm planner's stage)."""
    level, message = DiagnosticStatus.OK, "planning" if goal_active else "idle"
    if lifecycle_state != "active":
        message = f"{lifecycle_state}: not accepting goals"
    if goal_active and state_age_s > 0.5:
        level, message = DiagnosticStatus.WARN, f"no fresh state for {state_age_s:.1f} s"
    if stats.failures:
        level, message = DiagnosticStatus.ERROR, f"{stats.failures} planner failures"
    values = {
        "plan_latency_median_ms": f"{stats.latency_ms(50):.2f}", "plan_latency_p95_ms": f"{stats.latency_ms(95):.2f}",
        "replan_rate_requested_hz": f"{requested_hz:.2f}",
        "replan_rate_achieved_hz": f"{stats.achieved_rate_hz(now):.2f}",
        "plans": str(stats.plans), "overruns": str(stats.overruns), "failures": str(stats.failures),
        "device": device, "checkpoint": checkpoint, "state_age_s": f"{state_age_s:.3f}",
        "lifecycle_state": lifecycle_state, **(extra or {}),
    }
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=device,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    message = DiagnosticArray(status=statuses)
    message.header.stamp = stamp
    return message
