"""Resource limits of a trial: what they are (sizes, requests, caps), not how they are enforced.

A task asks in Harbor's ``task.toml [environment]`` fields (``memory``/``memory_mb``,
``cpus``, ``storage``/``storage_mb``, and ``pids``, which Harbor itself does not have); the
block's ``environment.limits`` gives the default of every limit and ``environment.max_limits``
caps what a task may ask. The effective limit is min(request or default, cap). Limits only the
block sets (``tmp``, ``output``, ``reward_file``) follow the same rule with no request.

Enforcement is in :mod:`trialbook.run.environments.guard` (cgroups, rlimits, a watchdog).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from trialbook.errors import ConfigError

_KI, _MI, _GI, _TI = 1024, 1024**2, 1024**3, 1024**4
#: Single letters are binary as in Harbor's and Docker's ``2G``; ``GB`` is decimal, ``GiB`` binary.
_UNITS = {"": 1, "b": 1, "k": _KI, "ki": _KI, "kib": _KI, "kb": 1000, "m": _MI, "mi": _MI, "mib": _MI,
          "mb": 1000**2, "g": _GI, "gi": _GI, "gib": _GI, "gb": 1000**3, "t": _TI, "ti": _TI, "tib": _TI,
          "tb": 1000**4}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", re.ASCII)


def parse_size(value: Any, where: str) -> int:
    """Bytes from ``4GiB``, ``512M`` (MiB), ``2GB`` (10^9) or a plain number of bytes; a bad value names ``where``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a size such as 4GiB, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 1:
            raise ConfigError(f"{where}: a size must be a positive number of bytes, got {value!r}")
        return int(value)
    match = _SIZE.fullmatch(str(value))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ConfigError(f"{where}: expected a size such as 4GiB or 512MiB, got {value!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ConfigError(f"{where}: a size must be positive, got {value!r}")
    return size


def human(size: int) -> str:
    """``4 GiB``, ``512 MiB`` (how limits are named in reasons and notes)."""
    for unit, factor in (("TiB", _TI), ("GiB", _GI), ("MiB", _MI), ("KiB", _KI)):
        if size >= factor and (size % factor == 0 or size >= 10 * factor):
            return f"{size // factor} {unit}" if size % factor == 0 else f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """The limits of one trial phase (None: not limited). Sizes are in bytes."""

    memory: int | None = None
    pids: int | None = None
    cpus: float | None = None
    tmp: int | None = None
    #: Disk use of the trial's writable directories (``/app``, ``/logs``).
    storage: int | None = None
    #: Each command output file (``agent/stdout.txt``, ``evaluation/test_output.txt``...) keeps this much.
    output: int | None = None
    #: Largest ``reward.json``/``reward.txt`` read.
    reward_file: int | None = None

    def set_values(self) -> dict[str, Any]:
        """The limits that are set, by name (as recorded in ``trial.json``)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


#: The sandboxed resources: a phase with none of them set needs no cgroup, rlimit or watchdog.
ENFORCED = ("memory", "pids", "cpus", "storage")


def _size_field(env: dict[str, Any], name: str, where: str) -> int | None:
    """``name`` (a size string or bytes) or ``name_mb`` (megabytes, Harbor's field); both must agree."""
    size = sized_mb = None
    if env.get(name) is not None:
        size = parse_size(env[name], f"{where} [environment] {name}")
    mb = env.get(f"{name}_mb")
    if mb is not None:
        if isinstance(mb, bool) or not isinstance(mb, int | float) or not math.isfinite(mb) or mb <= 0:
            raise ConfigError(f"{where} [environment] {name}_mb must be a positive number of megabytes, "
                              f"got {mb!r}")
        sized_mb = int(mb * _MI)
    if size is not None and sized_mb is not None and size != sized_mb:
        raise ConfigError(f"{where} [environment] {name} = {env[name]!r} and {name}_mb = {mb!r} disagree; "
                          f"keep one")
    return sized_mb if sized_mb is not None else size


def task_requests(environment: dict[str, Any], where: str) -> Limits:
    """What a ``task.toml [environment]`` section asks for (Harbor's field names)."""
    cpus = environment.get("cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, int | float)
                             or not math.isfinite(cpus) or cpus <= 0):
        raise ConfigError(f"{where} [environment] cpus must be a positive number, got {cpus!r}")
    pids = environment.get("pids")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int) or pids <= 0):
        raise ConfigError(f"{where} [environment] pids must be a positive integer, got {pids!r}")
    return Limits(memory=_size_field(environment, "memory", where), pids=pids,
                  cpus=float(cpus) if cpus is not None else None,
                  storage=_size_field(environment, "storage", where))


def effective(request: Limits, defaults: Limits, caps: Limits) -> Limits:
    """Each limit: the task's request, else the block's default, never above the block's cap."""
    def pick(asked: Any, default: Any, cap: Any) -> Any:
        value = asked if asked is not None else default
        if value is None:
            return cap
        return min(value, cap) if cap is not None else value

    ask, dflt, cap = asdict(request), asdict(defaults), asdict(caps)
    return Limits(**{name: pick(ask[name], dflt[name], cap[name]) for name in ask})
