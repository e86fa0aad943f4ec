"""What SFT conversion consumes: one already-read trial (identity, verdict, ATIF trajectory).

Job readers of every layout (native, harbor, velora, ...) produce these; conversion never
opens a results tree itself, so it works the same whatever layout the trial came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.model.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class SftInput:
    """One trial to convert: who it is (job/task/variant/attempt), how it scored, and its trajectory.

    ``score`` is the trial's reward (None when the verifier gave none); ``resolved`` is True only
    for outcome ``resolved``. ``layout`` and ``trial_path`` are provenance copied into im.jsonl.
    """

    id: str
    job: str
    task: str
    variant: str
    attempt: int
    score: float | None
    resolved: bool
    layout: str
    trial_path: str
    #: The ATIF trajectory: a model, or its JSON data checked by :mod:`trialbook.sft.atif_data`.
    trajectory: Trajectory | dict[str, Any]
