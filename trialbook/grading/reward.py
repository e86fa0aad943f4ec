"""The reward of Harbor-format tasks: what ``tests/test.sh`` wrote in ``/logs/verifier``.

``/logs/verifier/reward.json`` (a flat object of numbers) is preferred over
``/logs/verifier/reward.txt`` (one number). The primary reward is the ``reward`` key when
present, else the only key, else the mean of all keys. A missing, empty or unparseable
reward is a ``verifier_error`` with the reason; a hang is a ``timeout``.

The reward files are written by untrusted code: they are read without following links,
only when regular files, and only up to the ``reward_file`` limit (:data:`MAX_REWARD_BYTES` by default); ``reward.txt`` holds an
ASCII decimal number (``1``, ``0.25``, ``1e-3``), nothing else.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import orjson

from trialbook.model.numbers import mean
from trialbook.model.outcome import Outcome, outcome_from_reward
from trialbook.model.verdict import Verdict
from trialbook.untrusted import read_capped

#: Largest reward file read when no limit is given (a bigger one is the verifier's error).
MAX_REWARD_BYTES = 1024 * 1024
_ASCII_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class RewardFileError(ValueError):
    """The reward file exists but cannot be used; the message says why."""


def primary_reward(rewards: dict[str, float]) -> float:
    """``reward`` key, else the single value, else the mean (documented above)."""
    if "reward" in rewards:
        return rewards["reward"]
    if len(rewards) == 1:
        return next(iter(rewards.values()))
    return mean(rewards.values()) or 0.0


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RewardFileError(f"{where}: expected a number, got {value!r}"[:200])
    f = float(value)
    if not math.isfinite(f):
        raise RewardFileError(f"{where}: reward must be finite, got {value!r}")
    return f


def rewards_from_json(data: object, *, lenient: bool = False) -> dict[str, float]:
    """The rewards of a parsed ``reward.json``: a flat object of finite numbers.

    Strict (a trial's own grade): anything else raises :class:`RewardFileError`. Lenient
    (reading another harness's tree): keys whose value is not a finite number are dropped.
    """
    if not isinstance(data, dict) or not data:
        if lenient:
            return {}
        raise RewardFileError("reward.json must be a non-empty flat object of numbers")
    out: dict[str, float] = {}
    for key, value in data.items():
        try:
            out[str(key)] = _number(value, f"reward.json key {key!r}")
        except RewardFileError:
            if not lenient:
                raise
    return out


def rewards_from_text(text: str, *, lenient: bool = False) -> dict[str, float]:
    """The reward of a ``reward.txt``: one ASCII decimal number.

    Lenient (another harness's tree) takes any number ``float()`` takes and drops a
    non-finite one; both modes raise :class:`RewardFileError` for text that is no number.
    """
    text = text.strip()
    if not text:
        raise RewardFileError("reward.txt is empty")
    if not (_ASCII_NUMBER.fullmatch(text) or lenient):
        raise RewardFileError(f"reward.txt does not hold a number: {text[:80]!r}")
    try:
        value = float(text)
    except ValueError:
        raise RewardFileError(f"reward.txt does not hold a number: {text[:80]!r}") from None
    if lenient and not math.isfinite(value):
        return {}
    return {"reward": _number(value, "reward.txt")}


def read_rewards(verifier_dir: Path, max_bytes: int = MAX_REWARD_BYTES) -> tuple[dict[str, float], str]:
    """Rewards and the file name they came from; raises ``RewardFileError``/``FileNotFoundError``."""
    json_path, txt_path = verifier_dir / "reward.json", verifier_dir / "reward.txt"
    if json_path.exists() or json_path.is_symlink():
        raw = _read(json_path, max_bytes)
        if not raw.strip():
            raise RewardFileError("reward.json is empty")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RewardFileError(f"reward.json is not valid JSON: {exc}") from None
        return rewards_from_json(data), "reward.json"
    if txt_path.exists() or txt_path.is_symlink():
        return rewards_from_text(_read(txt_path, max_bytes).decode("utf-8", errors="replace")), "reward.txt"
    raise FileNotFoundError("the verifier wrote neither reward.json nor reward.txt in /logs/verifier")


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        return read_capped(path, max_bytes)
    except ValueError as exc:
        raise RewardFileError(str(exc)) from None


def verdict_from_files(verifier_dir: Path, exit_code: int | None, duration_s: float,
                       max_bytes: int = MAX_REWARD_BYTES) -> Verdict:
    """Turn what ``test.sh`` left behind into a verdict (pure apart from reading the files)."""
    try:
        rewards, source = read_rewards(verifier_dir, max_bytes)
    except (RewardFileError, FileNotFoundError) as exc:
        reason = str(exc)
        if exit_code not in (0, None):
            reason += f" (test.sh exited with code {exit_code})"
        return Verdict(outcome=Outcome.VERIFIER_ERROR, reason=reason, exit_code=exit_code,
                       duration_s=duration_s)
    reward = primary_reward(rewards)
    return Verdict(outcome=outcome_from_reward(reward), reward=reward, rewards=rewards,
                   source=source, exit_code=exit_code, duration_s=duration_s)
