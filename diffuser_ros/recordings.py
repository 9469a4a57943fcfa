"""Turn a ROS 2 recording into the D4RL-layout training set the trainer reads (`diffuser-ros dataset
from-bag`).

Reads a bare MCAP file (ROS 2 profile, CDR; what `python -m diffuser_ros.recorder` and `bringup --record`
write) with mcap-ros2-support, or a rosbag2 directory (metadata.yaml with .db3 or .mcap storage, or a
lone .db3 file) with rosbags. A message's time is its header stamp when it has a non-zero one, else
the recording's log time; on a topic whose messages carry stamps, a zero stamp is time zero of a
simulated clock (a simulator's first message), not a missing one.

The state and command topics are turned into vectors by the robot's mappings
(diffuser_ros.robot_messages) and resampled to the control rate: one row per tick, from the first time
both a state and a command exist to the earlier of the last state and the last command. The state is
interpolated linearly between the states around the tick (a `yaw` field along the unwrapped angle, a
`cos_yaw`/`sin_yaw` pair renormalised), or with `interpolate_state=False` taken as the latest at or
before the tick; the command is the latest at or before the tick (zero-order hold, as the robot applies
it).

Episodes end where a new goal arrives (a message on the goal topic) and at gaps: ticks where the states
around the tick are more than `max_gap` apart, or the latest command is more than `max_gap` old (the
robot would have stopped), are left out; with a goal topic, so are the ticks before the first goal.
Episodes shorter than `min_steps` are dropped.
"""
from __future__ import annotations

import math
import warnings
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from diffuser_core.data.d4rl_hdf5 import write_d4rl_hdf5
from diffuser_ros.robot_messages import CommandMapping, StateMapping, header_seconds

GOAL_TYPE = "geometry_msgs/msg/PoseStamped"
CLOCK_TOLERANCE_S = 0.005  # a message this much earlier than the one before it on its topic is jitter
MAX_CLOCK_JUMP_S = 60.0  # a longer silence on the state or command topic is a clock jump
TIME_SLACK_S = 1e-6  # a message at a tick's time counts as at or before the tick despite rounding
ANGLE_FIELDS = ("yaw",)
UNIT_PAIRS = (("cos_yaw", "sin_yaw"),)


class RecordingError(ValueError):
    """A recording that cannot be turned into a dataset: says which file, topic and time, and why."""


# ------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ConversionSettings:
    """Which topics hold the state, the command and the goals, how to read them, and how to cut the
    stream into episodes."""

    state_topic: str
    command_topic: str
    state: StateMapping
    command: CommandMapping
    rate: float
    goal_topic: str | None = None
    max_gap: float = 0.5
    min_steps: int = 2
    interpolate_state: bool = True

    def __post_init__(self):
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise RecordingError(f"rate must be a positive number of Hz, got {self.rate}")
        if not (math.isfinite(self.max_gap) and self.max_gap > 0):
            raise RecordingError(f"max_gap must be a positive number of seconds, got {self.max_gap}")
        if self.min_steps < 1:
            raise RecordingError(f"min_steps must be >= 1, got {self.min_steps}")

    def attrs(self) -> dict:
        """The settings as hdf5 file attributes (plain strings and numbers)."""
        return {"state_topic": self.state_topic, "state_kind": self.state.kind,
                "state_fields": " ".join(self.state.fields), "command_topic": self.command_topic,
                "command_kind": self.command.kind, "command_fields": " ".join(self.command.fields),
                "goal_topic": self.goal_topic or "", "rate": float(self.rate), "max_gap": float(self.max_gap),
                "min_steps": int(self.min_steps),
                "state_sampling": "linear" if self.interpolate_state else "latest"}


# ------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class TopicRequest:
    """A topic to read: its name, the message type its reader expects, and the reader (message ->
    vector; ValueError naming the field that is missing or not finite)."""

    name: str
    type_name: str
    read: Callable[[Any], np.ndarray]
    role: str
    max_jump: float | None = MAX_CLOCK_JUMP_S


@dataclass(frozen=True)
class TopicSeries:
    """One topic's messages as vectors, in time order: times (s), values (n, dim) and which clock
    gave the times."""

    topic: str
    type_name: str
    times: np.ndarray
    values: np.ndarray
    clock: str

    def __len__(self) -> int:
        return len(self.times)


def read_topics(path, requests: list[TopicRequest]) -> dict[str, TopicSeries]:
    """Each requested topic's series (keyed by the request's name), read from an MCAP file or a
    rosbag2 directory; RecordingError for a missing, unreadable or unfit recording."""
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such recording (an .mcap file or a rosbag2 directory)")
    if path.name == "metadata.yaml":
        path = path.parent
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise RecordingError(f"{path}: a folder without metadata.yaml is not a rosbag2 recording")
    is_rosbag2 = path.is_dir() or path.suffix == ".db3"
    collector = _Collector(path, requests)
    messages = _rosbag2_messages(path, collector) if is_rosbag2 else _mcap_messages(path, collector)
    with closing(_guarded(path, messages)) as items:
        for topic, log_time_ns, message in items:
            collector.add(topic, log_time_ns, message)
    return collector.series()


def _guarded(path: Path, items: Iterator) -> Iterator:
    """The reader library's items, its failures (a damaged or foreign file) as RecordingError."""
    try:
        yield from items
    except RecordingError:
        raise
    except Exception as error:  # the libraries raise many kinds for a bad file; all mean "unreadable"
        raise RecordingError(f"{path}: cannot read the recording ({type(error).__name__}: {error})") from error


def _mcap_messages(path: Path, collector: "_Collector") -> Iterator[tuple[str, int, Any]]:
    """(topic, log time ns, message) of the wanted topics of a bare MCAP file, via mcap-ros2-support; an
    unfinished file (its recorder killed) is read in file order up to its first incomplete record."""
    from mcap.exceptions import McapError
    from mcap.reader import NonSeekingReader, make_reader
    from mcap_ros2.decoder import DecoderFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its module docstring warns on import
        from mcap_ros2.reader import read_ros2_messages

    with open(path, "rb") as file:
        types, finished = _mcap_topic_types(file)
    wanted = collector.choose(types)
    with open(path, "rb") as file:
        decoders = [DecoderFactory()]
        reader = make_reader(file, decoder_factories=decoders) if finished else NonSeekingReader(
            file, decoder_factories=decoders)
        try:
            for item in read_ros2_messages(reader, topics=wanted, log_time_order=finished):
                yield item.channel.topic, item.log_time_ns, item.ros_msg
        except McapError:
            if finished:
                raise


def _mcap_topic_types(file) -> tuple[dict[str, str], bool]:
    """Topic -> schema name of an MCAP file, and whether the file is finished (has its summary and
    footer); an unfinished or summary-less file is read through once for its channels."""
    from mcap.exceptions import McapError
    from mcap.reader import NonSeekingReader, make_reader
    from mcap.writer import MCAP0_MAGIC

    if file.read(len(MCAP0_MAGIC)) != MCAP0_MAGIC:
        raise RecordingError(f"{file.name}: cannot read the recording (not an MCAP file: it does not start with "
                             f"MCAP's magic bytes)")
    file.seek(0)
    try:
        summary, finished = make_reader(file).get_summary(), True
    except McapError:  # no footer, or a cut-off record where it should be
        summary, finished = None, False
    if summary is not None:
        return {channel.topic: summary.schemas[channel.schema_id].name if channel.schema_id in summary.schemas
                else "?" for channel in summary.channels.values()}, True
    file.seek(0)
    types = {}
    try:
        for schema, channel, _ in NonSeekingReader(file).iter_messages(log_time_order=False):
            types[channel.topic] = schema.name if schema is not None else "?"
    except McapError:
        if finished:
            raise
    return types, finished


def _rosbag2_messages(path: Path, collector: "_Collector") -> Iterator[tuple[str, int, Any]]:
    """(topic, log time ns, message) of the wanted topics of a rosbag2 recording, via rosbags."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        wanted = collector.choose({name: info.msgtype or "?" for name, info in reader.topics.items()})
        connections = [connection for connection in reader.connections if connection.topic in wanted]
        fallbacks: dict[str, Callable[[bytes], Any]] = {}
        for connection, timestamp, raw in reader.messages(connections=connections):
            yield connection.topic, timestamp, _deserialize(reader, connection.msgtype, raw, fallbacks)


def _deserialize(reader, type_name: str, raw: bytes, fallbacks: dict):
    """A rosbag2 message through rosbags' CDR deserializer, else through mcap-ros2-support's decoder of
    the same definition: Fast-CDR pads an empty float64 sequence (a JointState without efforts) to 8
    bytes, which rosbags rejects as a size mismatch."""
    from rosbags.highlevel import AnyReaderError

    try:
        return reader.deserialize(raw, type_name)
    except AnyReaderError:
        if type_name not in fallbacks:
            fallbacks[type_name] = _mcap_ros2_decoder(reader.typestore, type_name)
        return fallbacks[type_name](raw)


def _mcap_ros2_decoder(typestore, type_name: str) -> Callable[[bytes], Any]:
    """mcap-ros2-support's CDR decoder for a type, from its message definition in the typestore."""
    from mcap.records import Schema
    from mcap_ros2.decoder import DecoderFactory

    definition, _ = typestore.generate_msgdef(type_name, ros_version=2)
    schema = Schema(id=0, name=type_name.replace("/msg/", "/"), encoding="ros2msg", data=definition.encode())
    return DecoderFactory().decoder_for("cdr", schema)


def full_type_name(name: str) -> str:
    """`pkg/msg/Type` for `pkg/Type` (MCAP schema names) or `pkg/msg/Type`."""
    parts = name.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else name


class _Collector:
    """Gathers the wanted topics' times and vectors message by message, then checks their clocks."""

    def __init__(self, path: Path, requests: list[TopicRequest]):
        self.path, self.requests = path, requests
        self.by_topic: dict[str, TopicRequest] = {}
        self.stamps: dict[str, list[float]] = {}
        self.log_times: dict[str, list[float]] = {}
        self.values: dict[str, list[np.ndarray]] = {}

    def choose(self, types: dict[str, str]) -> list[str]:
        """The recording's topic names for the requests (`odom` finds `/odom`); RecordingError when a
        topic is missing or of another type than its reader expects."""
        for request in self.requests:
            topic = _find_topic(request.name, types)
            if topic is None:
                listing = ", ".join(f"{name} ({full_type_name(kind)})" for name, kind in sorted(types.items()))
                raise RecordingError(f"{self.path}: no {request.role} topic '{request.name}' in the recording "
                                     f"(it has {listing or 'no topics'})")
            found = full_type_name(types[topic])
            if found != request.type_name:
                raise RecordingError(f"{self.path}: {request.role} topic {topic} carries {found}, "
                                     f"but its mapping reads {request.type_name}")
            if topic in self.by_topic:
                raise RecordingError(f"{topic} is asked for as both {self.by_topic[topic].role} and {request.role}")
            self.by_topic[topic] = request
            self.stamps[topic], self.log_times[topic], self.values[topic] = [], [], []
        return list(self.by_topic)

    def add(self, topic: str, log_time_ns: int, message) -> None:
        """Append one message: its header stamp (NaN for none or zero), log time and vector."""
        stamp = header_seconds(message)
        try:
            values = self.by_topic[topic].read(message)
        except ValueError as error:
            time, clock = (stamp, "header stamp") if stamp is not None else (log_time_ns * 1e-9, "log time")
            raise RecordingError(f"{self.path}: {topic} at {time:.3f} s ({clock}, message "
                                 f"{len(self.values[topic])}): {error}") from None
        self.stamps[topic].append(math.nan if stamp is None else stamp)
        self.log_times[topic].append(log_time_ns * 1e-9)
        self.values[topic].append(values)

    def series(self) -> dict[str, TopicSeries]:
        """Each request's series, clock-checked and in time order."""
        result = {}
        for topic, request in self.by_topic.items():
            if not self.values[topic]:
                raise RecordingError(f"{self.path}: {request.role} topic {topic} has no messages")
            times, clock = self.times(topic)
            check_clock(self.path, topic, times, clock, request.max_jump)
            order = np.argsort(times, kind="stable")
            values = np.stack(self.values[topic]).astype(np.float64)
            result[request.name] = TopicSeries(topic, request.type_name, times[order], values[order], clock)
        return result

    def times(self, topic: str) -> tuple[np.ndarray, str]:
        """A topic's message times and their clock: its header stamps when its messages carry any (a
        zero stamp then is time zero of a simulated clock), else the log times."""
        stamps = np.asarray(self.stamps[topic], dtype=np.float64)
        if np.isnan(stamps).all():
            return np.asarray(self.log_times[topic], dtype=np.float64), "log time"
        return np.nan_to_num(stamps, nan=0.0), "header stamp"


def _find_topic(name: str, types: dict[str, str]) -> str | None:
    """The recorded topic called `name`, with or without its leading slash."""
    for candidate in (name, "/" + name.lstrip("/"), name.lstrip("/")):
        if candidate in types:
            return candidate
    return None


def check_clock(path, topic: str, times: np.ndarray, clock: str, max_jump: float | None) -> None:
    """RecordingError where a topic's time goes back by more than the jitter tolerance, or forward by
    more than `max_jump` seconds (None: any silence is fine)."""
    steps = np.diff(times)
    back = np.flatnonzero(steps < -CLOCK_TOLERANCE_S)
    if back.size:
        index = int(back[0]) + 1
        raise RecordingError(f"{path}: {topic} clock jumps back {-steps[index - 1]:.3f} s at {times[index]:.3f} s "
                             f"({clock}, message {index}, after {times[index - 1]:.3f} s)")
    if max_jump is not None:
        forward = np.flatnonzero(steps > max_jump)
        if forward.size:
            index = int(forward[0]) + 1
            raise RecordingError(f"{path}: {topic} clock jumps forward {steps[index - 1]:.3f} s (over {max_jump:g} s) "
                                 f"at {times[index]:.3f} s ({clock}, message {index})")


def read_goal(message) -> np.ndarray:
    """A PoseStamped goal's (x, y); ValueError when either is not finite."""
    position = message.pose.position
    goal = np.array([position.x, position.y], dtype=np.float64)
    if not np.all(np.isfinite(goal)):
        raise ValueError(f"goal pose has non-finite pose.position {goal.tolist()}")
    return goal


def topic_requests(settings: ConversionSettings) -> list[TopicRequest]:
    """The state, command and (optional) goal topics to read, with their readers."""
    requests = [TopicRequest(settings.state_topic, settings.state.type_name, settings.state.read, "state"),
                TopicRequest(settings.command_topic, settings.command.type_name, settings.command.read, "command")]
    if settings.goal_topic:
        requests.append(TopicRequest(settings.goal_topic, GOAL_TYPE, read_goal, "goal", max_jump=None))
    return requests


# ---------------------------------------------------------------------------- resampling
@dataclass(frozen=True)
class Gap:
    """A silence longer than max_gap on a topic: from `time` (s), `duration` seconds long."""

    topic: str
    time: float
    duration: float


def control_ticks(state: TopicSeries, command: TopicSeries, rate: float) -> np.ndarray:
    """Tick times at `rate` Hz from the first time both a state and a command exist to the earlier of
    the last state and the last command; RecordingError when the two do not overlap."""
    start = max(state.times[0], command.times[0])
    end = min(state.times[-1], command.times[-1])
    if end < start:
        raise RecordingError(
            f"{state.topic} ({state.clock}, {state.times[0]:.3f} to {state.times[-1]:.3f} s) and {command.topic} "
            f"({command.clock}, {command.times[0]:.3f} to {command.times[-1]:.3f} s) do not overlap in time"
            + (" (they use different clocks)" if state.clock != command.clock else ""))
    count = int(math.floor((end - start) * rate + TIME_SLACK_S)) + 1
    return start + np.arange(count) / rate


def latest_index(times: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Index of the latest time at or before each tick (-1 before the first)."""
    return np.searchsorted(times, ticks + TIME_SLACK_S, side="right") - 1


def sample_states(state: TopicSeries, ticks: np.ndarray, fields: tuple[str, ...], max_gap: float,
                  interpolate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The state at each tick (linear between the states around it, or the latest) and whether it is
    known: the states around it at most max_gap apart (the latest at most max_gap old when holding)."""
    latest = latest_index(state.times, ticks)
    age = ticks - state.times[latest]
    if not interpolate:
        return state.values[latest], age <= max_gap
    following = np.minimum(latest + 1, len(state) - 1)
    span = state.times[following] - state.times[latest]
    weight = np.clip(np.divide(age, span, out=np.zeros_like(age), where=span > 0), 0.0, 1.0)
    values = _interpolate(state.values, fields, latest, following, weight)
    known = (age <= max_gap) & ((span <= max_gap) | (age <= TIME_SLACK_S))
    return values, known


def _interpolate(values: np.ndarray, fields: tuple[str, ...], before: np.ndarray, after: np.ndarray,
                 weight: np.ndarray) -> np.ndarray:
    """Linear interpolation between rows `before` and `after`; angles along their unwrapped path, unit
    (cos, sin) pairs renormalised (the earlier row's where the pair cancels out)."""
    columns = values.copy()
    angles = [index for index, name in enumerate(fields) if name in ANGLE_FIELDS]
    columns[:, angles] = np.unwrap(columns[:, angles], axis=0)
    result = columns[before] + weight[:, None] * (columns[after] - columns[before])
    result[:, angles] = (result[:, angles] + np.pi) % (2 * np.pi) - np.pi
    for cos_name, sin_name in UNIT_PAIRS:
        if cos_name in fields and sin_name in fields:
            pair = [fields.index(cos_name), fields.index(sin_name)]
            norm = np.hypot(result[:, pair[0]], result[:, pair[1]])
            degenerate = norm < 1e-9
            result[:, pair] = np.where(degenerate[:, None], values[before][:, pair],
                                       result[:, pair] / np.where(degenerate, 1.0, norm)[:, None])
    return result


def hold_commands(command: TopicSeries, ticks: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The latest command at or before each tick (zero-order hold) and whether it is at most max_gap old."""
    latest = latest_index(command.times, ticks)
    return command.values[np.maximum(latest, 0)], (latest >= 0) & (ticks - command.times[latest] <= max_gap)


def find_gaps(series: TopicSeries, start: float, end: float, max_gap: float) -> list[Gap]:
    """The silences longer than max_gap between consecutive messages of a topic within [start, end]."""
    times = series.times
    steps = np.diff(times)
    inside = (steps > max_gap) & (times[1:] > start) & (times[:-1] < end)
    return [Gap(series.topic, float(times[index]), float(steps[index])) for index in np.flatnonzero(inside)]


@dataclass(frozen=True)
class Episodes:
    """The kept ticks (mask over all ticks), the last kept tick of each episode (over the kept ticks),
    and what was dropped."""

    keep: np.ndarray
    ends: np.ndarray
    dropped_episodes: int
    dropped_steps: int


def split_into_episodes(known: np.ndarray, goal_index: np.ndarray, min_steps: int) -> Episodes:
    """Episodes are runs of known ticks, a new one at each goal change; those under min_steps dropped."""
    previous_known = np.concatenate([[False], known[:-1]])
    goal_changed = np.concatenate([[False], goal_index[1:] != goal_index[:-1]])
    starts = known & (~previous_known | goal_changed)
    if not starts.any():
        return Episodes(np.zeros_like(known), np.zeros(0, dtype=bool), 0, 0)
    episode = np.cumsum(starts) - 1
    lengths = np.bincount(episode[known], minlength=int(starts.sum()))
    long_enough = lengths >= min_steps
    keep = known & long_enough[np.maximum(episode, 0)]
    kept_episode = episode[keep]
    ends = np.append(kept_episode[1:] != kept_episode[:-1], True) if kept_episode.size else np.zeros(0, bool)
    short = ~long_enough
    return Episodes(keep, ends, int(short.sum()), int(lengths[short].sum()))


# ------------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class ConversionSummary:
    """What a conversion made of a recording: episodes and steps kept, gaps, what was dropped."""

    source: str
    episodes: int
    steps: int
    rate: float
    ticks: int
    gaps: tuple[Gap, ...]
    dropped_episodes: int
    dropped_steps: int
    steps_before_goal: int
    state_dim: int
    command_dim: int
    messages: dict[str, int] = field(default_factory=dict)
    out: str | None = None

    @property
    def duration_s(self) -> float:
        """Seconds of robot motion the kept steps stand for (one control period each)."""
        return self.steps / self.rate

    @property
    def longest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda gap: gap.duration) if self.gaps else None

    def text(self) -> str:
        """A few lines for the terminal."""
        target = f" -> {self.out}" if self.out else ""
        counts = ", ".join(f"{topic} {count}" for topic, count in self.messages.items())
        lines = [f"{self.source}{target}",
                 f"  {self.episodes} episodes, {self.steps} steps at {self.rate:g} Hz ({self.duration_s:.1f} s), "
                 f"kept of the {self.ticks} ticks where state and command overlap",
                 f"  state {self.state_dim} values, command {self.command_dim} values; messages: {counts}"]
        longest = self.longest_gap
        lines.append(f"  gaps: {len(self.gaps)}" + (f", longest {longest.duration:.3f} s on {longest.topic} at "
                                                    f"{longest.time:.3f} s" if longest else ""))
        before_goal = f", {self.steps_before_goal} steps before the first goal" if self.steps_before_goal else ""
        lines.append(f"  dropped: {self.dropped_episodes} episodes shorter than the minimum ({self.dropped_steps} "
                     f"steps){before_goal}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


# ----------------------------------------------------------------------------- conversion
@dataclass(frozen=True)
class RecordingDataset:
    """A converted recording: the D4RL-layout arrays, the file attributes and the summary."""

    data: dict
    attrs: dict
    summary: ConversionSummary


def build_dataset(path, settings: ConversionSettings) -> RecordingDataset:
    """Read the recording's topics, resample them to the control rate, cut episodes, and lay the result
    out as D4RL arrays."""
    series = read_topics(path, topic_requests(settings))
    state, command = series[settings.state_topic], series[settings.command_topic]
    goal = series.get(settings.goal_topic) if settings.goal_topic else None
    ticks = control_ticks(state, command, settings.rate)
    observations, state_known = sample_states(state, ticks, settings.state.fields, settings.max_gap,
                                              settings.interpolate_state)
    actions, command_known = hold_commands(command, ticks, settings.max_gap)
    known = state_known & command_known
    goal_index = latest_index(goal.times, ticks) if goal is not None else np.zeros(len(ticks), dtype=np.int64)
    steps_before_goal = int((known & (goal_index < 0)).sum())
    episodes = split_into_episodes(known & (goal_index >= 0), goal_index, settings.min_steps)
    if not episodes.keep.any():
        raise RecordingError(f"{path}: no episode of at least {settings.min_steps} steps at {settings.rate:g} Hz "
                             f"({int(known.sum())} of {len(ticks)} ticks have a state and a command within "
                             f"{settings.max_gap:g} s" + (f", {steps_before_goal} of them before the first goal"
                                                          if goal is not None else "") + ")")
    data = _d4rl_arrays(ticks, observations, actions, episodes, goal, goal_index)
    gaps = find_gaps(state, ticks[0], ticks[-1], settings.max_gap) + find_gaps(command, ticks[0], ticks[-1],
                                                                                settings.max_gap)
    summary = ConversionSummary(
        source=str(path), episodes=int(episodes.ends.sum()), steps=int(episodes.keep.sum()), rate=settings.rate,
        ticks=len(ticks), gaps=tuple(sorted(gaps, key=lambda gap: gap.time)),
        dropped_episodes=episodes.dropped_episodes, dropped_steps=episodes.dropped_steps,
        steps_before_goal=steps_before_goal, state_dim=observations.shape[1], command_dim=actions.shape[1],
        messages={item.topic: len(item) for item in series.values()})
    attrs = {"source": str(path), "generator": "diffuser_ros.recordings", **settings.attrs()}
    return RecordingDataset(data, attrs, summary)


def _d4rl_arrays(ticks, observations, actions, episodes: Episodes, goal: TopicSeries | None,
                 goal_index: np.ndarray) -> dict:
    """The kept ticks as D4RL per-step arrays: timeouts at each episode's last step, no rewards."""
    keep = episodes.keep
    steps = int(keep.sum())
    data = {"observations": observations[keep].astype(np.float32), "actions": actions[keep].astype(np.float32),
            "rewards": np.zeros(steps, dtype=np.float32), "terminals": np.zeros(steps, dtype=bool),
            "timeouts": episodes.ends.copy(), "infos/time": ticks[keep]}
    if goal is not None:
        data["infos/goal"] = goal.values[goal_index[keep]].astype(np.float32)
    return data


def convert_recording(path, settings: ConversionSettings, out) -> ConversionSummary:
    """Convert a recording and write it as D4RL hdf5 at `out`; the summary of what it holds."""
    dataset = build_dataset(path, settings)
    write_d4rl_hdf5(out, dataset.data, attrs=dataset.attrs)
    return replace(dataset.summary, out=str(out))


# ------------------------------------------------------------------------------ scenarios
def scenario_mapping(scenario: str) -> dict:
    """The planner's state and command mapping and control rate of a scenario (its diffuser_planner
    parameters, the planner's defaults where it sets none): state_kind, state_fields, command_kind,
    command_fields, rate (1 / plan_dt)."""
    from diffuser_core.planning.receding import LoopSettings
    from diffuser_core.scenario import planner_parameters
    from diffuser_core.settings import defaults
    from diffuser_ros.planner_parameters import NodeSettings

    parameters = {**defaults(NodeSettings), **defaults(LoopSettings), **planner_parameters(scenario)}
    return {"state_kind": parameters["state_message"], "state_fields": tuple(parameters["state_fields"]),
            "command_kind": parameters["command_message"], "command_fields": tuple(parameters["command_fields"]),
            "rate": 1.0 / float(parameters["plan_dt"])}
