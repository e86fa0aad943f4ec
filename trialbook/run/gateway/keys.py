"""The gateway's trial keys: the files through which the runner tells the proxy which key is which trial.

The runner writes one small JSON file per running trial into the gateway's private ``keys/``
directory, named by the SHA-256 of the trial's key (the key itself is never written); the
proxy's auth hook (:mod:`.hooks`) looks a presented key up there, so a trial's key works
exactly while its file exists. The proxy reports each trial's progress in a ``.state`` file
next to it (calls accepted, calls logged), which the runner reads to know when the trial's
log is complete. Both sides import this module; it needs only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable naming the gateway's directory, set for the proxy process.
GATEWAY_DIR_ENV = "TRIALBOOK_GATEWAY_DIR"
#: Prefix of every trial key (recognisable in a leak report; the rest is 256 random bits).
KEY_PREFIX = "tb-trial-"


def new_key() -> str:
    """A fresh, unguessable trial key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_id(key: str) -> str:
    """The file name stem of a key: its SHA-256, so the key is never on disk."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """What the proxy learns from a trial key: whose calls they are and where they are logged."""

    trial_id: str
    #: The proxy's model name of the trial's variant (every request is sent to it).
    model_name: str
    #: The trial's ``agent/litellm-trajectory.jsonl`` on the host.
    log_path: str
    #: Successful model calls allowed, then HTTP 429 (None: no limit).
    step_limit: int | None = None
    #: USD the trial may spend, then HTTP 429 (None: no limit).
    cost_limit: float | None = None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_record(keys_dir: Path, key: str, record: KeyRecord) -> None:
    """Make ``key`` valid for ``record``'s trial."""
    _atomic_write(keys_dir / f"{key_id(key)}.json", json.dumps(asdict(record)))


def read_record(keys_dir: Path, key: str) -> KeyRecord | None:
    """The trial a presented key belongs to, or None (unknown or revoked)."""
    if not key or len(key) > 200:
        return None
    try:
        data = json.loads((keys_dir / f"{key_id(key)}.json").read_text(encoding="utf-8"))
        return KeyRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def remove_record(keys_dir: Path, key: str) -> None:
    """Revoke ``key`` (its state file goes too)."""
    for suffix in (".json", ".state"):
        with contextlib.suppress(FileNotFoundError):
            (keys_dir / f"{key_id(key)}{suffix}").unlink()


@dataclass
class TrialState:
    """The proxy's account of one trial: calls accepted (authenticated) and logged, the limit hit."""

    accepted: int = 0
    logged: int = 0
    #: ``step_limit`` or ``cost_limit`` once a call was refused over it.
    limit: str | None = None

    @property
    def settled(self) -> bool:
        return self.logged >= self.accepted


def write_state(keys_dir: Path, key_hash: str, state: TrialState) -> None:
    """Publish a trial's state (the proxy's side)."""
    if (keys_dir / f"{key_hash}.json").exists():  # not after the runner revoked the key
        _atomic_write(keys_dir / f"{key_hash}.state", json.dumps(asdict(state)))


def read_state(keys_dir: Path, key: str) -> TrialState:
    """A trial's state (the runner's side); empty before its first call."""
    try:
        data = json.loads((keys_dir / f"{key_id(key)}.state").read_text(encoding="utf-8"))
        return TrialState(**data)
    except (OSError, ValueError, TypeError):
        return TrialState()
