"""lf.stats.json: what went in, what was kept and why the rest was dropped, and what the kept data looks like.

The dashboard reads this file, so every number names its population: ``trajectories`` counts
inputs; ``tokens``, ``turns``, ``tool_calls`` and ``scores`` describe the *kept* examples;
``by_variant``/``by_task`` give both. Percentiles are nearest-rank (an observed value, no
interpolation). A trajectory is dropped for the first reason that applies, in the order of
:data:`DROP_REASONS`.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DROP_REASONS: tuple[str, ...] = (
    "no_trajectory",
    "unreadable_trajectory",
    "multimodal",
    "min_reward",
    "resolved_only",
    "empty",
    "duplicate",
    "max_tokens",
    "per_task_cap",
)
_SCORE_VALUES_LIMIT = 20
_SCORE_BINS = 10


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of already sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, total, mean, min, p50, p90 and max of ``values`` (None statistics when empty)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "total": 0, "mean": None, "min": None, "p50": None, "p90": None, "max": None}
    total = sum(ordered)
    return {
        "count": len(ordered),
        "total": total,
        "mean": round(total / len(ordered), 3),
        "min": ordered[0],
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "max": ordered[-1],
    }


def score_distribution(scores: Sequence[float | None]) -> dict[str, Any]:
    """Summary of rewards: missing count, mean/min/max, and counts per value (few values) or per bin."""
    present = sorted(s for s in scores if s is not None)
    out: dict[str, Any] = {"count": len(scores), "missing": len(scores) - len(present)}
    if not present:
        out.update(mean=None, min=None, max=None, values={})
        return out
    out.update(mean=round(sum(present) / len(present), 6), min=present[0], max=present[-1])
    distinct = Counter(present)
    if len(distinct) <= _SCORE_VALUES_LIMIT:
        out["values"] = {repr(float(value)): count for value, count in sorted(distinct.items())}
        return out
    low, high = present[0], present[-1]
    width = (high - low) / _SCORE_BINS
    bins = [0] * _SCORE_BINS
    for value in present:
        bins[min(_SCORE_BINS - 1, int((value - low) / width))] += 1
    out["bins"] = [
        {"low": round(low + i * width, 6), "high": round(low + (i + 1) * width, 6), "count": count}
        for i, count in enumerate(bins)
    ]
    return out


@dataclass(slots=True)
class ExampleFacts:
    """What the statistics need to know about one converted example."""

    task: str
    variant: str
    score: float | None
    resolved: bool
    tokens: int
    messages: int
    assistant_turns: int
    tool_names: tuple[str, ...]
    parallel_turns: int


@dataclass
class KeptFigures:
    """The kept examples, summed as they are kept: counters, and the per-example values the
    distributions need in typed arrays (8 bytes each), not one object per example."""

    count: int = 0
    tokens: array[int] = field(default_factory=lambda: array("q"))
    assistant_turns: array[int] = field(default_factory=lambda: array("q"))
    messages: array[int] = field(default_factory=lambda: array("q"))
    tool_calls: array[int] = field(default_factory=lambda: array("q"))
    parallel_turns: int = 0
    without_calls: int = 0
    tool_names: Counter[str] = field(default_factory=Counter)
    #: Present scores; ``int_scores`` marks those that came as ints (rendered as they came).
    scores: array[float] = field(default_factory=lambda: array("d"))
    int_scores: bytearray = field(default_factory=bytearray)
    scores_missing: int = 0
    resolved: int = 0
    variant: Counter[str] = field(default_factory=Counter)
    task: Counter[str] = field(default_factory=Counter)

    def add(self, f: ExampleFacts) -> None:
        """Count one kept example."""
        self.count += 1
        self.tokens.append(f.tokens)
        self.assistant_turns.append(f.assistant_turns)
        self.messages.append(f.messages)
        self.tool_calls.append(len(f.tool_names))
        self.parallel_turns += f.parallel_turns
        self.without_calls += not f.tool_names
        self.tool_names.update(f.tool_names)
        if f.score is None:
            self.scores_missing += 1
        else:
            self.scores.append(f.score)
            self.int_scores.append(type(f.score) is int)
        self.resolved += bool(f.resolved)
        self.variant[f.variant] += 1
        self.task[f.task] += 1

    def score_list(self) -> list[float | None]:
        """The kept examples' scores (missing ones as None), each as it came."""
        present: list[float | None] = [int(v) if i else v for v, i in zip(self.scores, self.int_scores, strict=True)]
        return present + [None] * self.scores_missing


@dataclass
class SftStats:
    """Accumulates inputs, drops and kept examples, then renders the lf.stats.json mapping."""

    tokenizer: str
    rendering: str
    trajectories_in: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    media: Counter[str] = field(default_factory=Counter)
    multimodal_trajectories: int = 0
    conversion: Counter[str] = field(default_factory=Counter)
    variant_in: Counter[str] = field(default_factory=Counter)
    task_in: Counter[str] = field(default_factory=Counter)
    kept: KeptFigures = field(default_factory=KeptFigures)
    #: False when no tokenizer counts (tokenizer ``none``): the token figures stay empty.
    count_tokens: bool = True

    def merge(self, other: SftStats) -> None:
        """Add the counts of ``other`` (another part of the same conversion; kept examples excepted)."""
        self.trajectories_in += other.trajectories_in
        self.multimodal_trajectories += other.multimodal_trajectories
        for mine, theirs in ((self.dropped, other.dropped), (self.media, other.media),
                             (self.conversion, other.conversion), (self.variant_in, other.variant_in),
                             (self.task_in, other.task_in)):
            mine.update(theirs)  # update(), not +: keys counted zero times stay, as in one process

    def saw(self, task: str, variant: str) -> None:
        """Count one input trajectory."""
        self.trajectories_in += 1
        self.task_in[task] += 1
        self.variant_in[variant] += 1

    def drop(self, reason: str, count: int = 1) -> None:
        """Count trajectories dropped for ``reason`` (one of :data:`DROP_REASONS`)."""
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        self.dropped[reason] += count

    def keep(self, facts: ExampleFacts) -> None:
        """Count one kept example (in output order)."""
        self.kept.add(facts)

    @property
    def longest(self) -> int | None:
        """The most tokens of a kept example (None when none was kept)."""
        return max(self.kept.tokens, default=None)

    def multimodal(self, parts: dict[str, int]) -> None:
        """Count a trajectory skipped for image/audio content, and its parts."""
        self.multimodal_trajectories += 1
        self.media.update(parts)
        self.drop("multimodal")

    def as_dict(self) -> dict[str, Any]:
        """The lf.stats.json body (without the dataset/options header added by the converter)."""
        kept = self.kept
        variant_kept, task_kept, names = kept.variant, kept.task, kept.tool_names
        return {
            "trajectories": {
                "in": self.trajectories_in,
                "kept": kept.count,
                "dropped": {reason: self.dropped.get(reason, 0) for reason in DROP_REASONS},
            },
            "tokens": {"tokenizer": self.tokenizer, "rendering": self.rendering,
                       **distribution(kept.tokens if self.count_tokens else ())},
            "turns": {
                "assistant": distribution(kept.assistant_turns),
                "messages": distribution(kept.messages),
            },
            "tool_calls": {
                "per_example": distribution(kept.tool_calls),
                "parallel_turns": kept.parallel_turns,
                "examples_without_calls": kept.without_calls,
                "by_name": dict(sorted(names.items(), key=lambda item: (-item[1], item[0]))),
            },
            "scores": {**score_distribution(kept.score_list()), "resolved": kept.resolved},
            "multimodal": {
                "trajectories": self.multimodal_trajectories,
                "image_parts": self.media.get("image", 0),
                "audio_parts": self.media.get("audio", 0),
            },
            "conversion": dict(sorted(self.conversion.items())),
            "by_variant": {v: {"in": n, "kept": variant_kept.get(v, 0)} for v, n in sorted(self.variant_in.items())},
            "by_task": {t: {"in": n, "kept": task_kept.get(t, 0)} for t, n in sorted(self.task_in.items())},
        }
