"""Command-line overrides of a block config for one run (``trialbook run -k 5 -n 8 --task 'fix-*'``).

They are applied to the parsed YAML before validation, so the job's config snapshot records
what really ran and a resume compares against it like any other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError


@dataclass(frozen=True)
class RunOverrides:
    """What the user asked on the command line; empty fields leave the config as written."""

    attempts: int | None = None
    concurrency: int | None = None
    tasks: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == RunOverrides()

    def apply(self, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        """A copy of ``raw`` with the overrides set; an unknown variant names the known ones."""
        out = dict(raw)
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.tasks:
            tasks = out.get("tasks")
            if not isinstance(tasks, dict):
                raise ConfigError("--task needs a tasks: section in the config", path)
            out["tasks"] = {**tasks, "include": list(self.tasks)}
        if self.variants:
            variants = out.get("variants")
            if not isinstance(variants, list):
                raise ConfigError("--variant needs a variants: list in the config", path)
            known = [v.get("name") for v in variants if isinstance(v, dict)]
            unknown = [name for name in self.variants if name not in known]
            if unknown:
                raise ConfigError(f"--variant {', '.join(unknown)}: no such variant "
                                  f"(the config has: {', '.join(map(str, known))})", path)
            out["variants"] = [v for v in variants if isinstance(v, dict) and v.get("name") in self.variants]
        return out
