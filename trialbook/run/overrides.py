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
    #: The VeloraHarness run interface: model keys (gemini, claude, gpt, ...) select variants.
    models: tuple[str, ...] = ()

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
        if self.models:
            out = self._select_models(out, path)
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

    def _select_models(self, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        """Keep the variants whose model key (``Gemini``, ``Claude``, ``GPT``, ...) is one of ``models``."""
        from trialbook.sources.velora import model_key

        variants = [v for v in raw.get("variants") or [] if isinstance(v, dict)]
        keys = {id(v): model_key(str(v.get("model") or v.get("name") or "")).lower() for v in variants}
        wanted = {m.strip().lower() for m in self.models if m.strip()}
        unknown = sorted(wanted - set(keys.values()))
        if unknown:
            known = ", ".join(sorted(set(keys.values()))) or "none"
            raise ConfigError(f"--models {', '.join(unknown)}: no variant has that model (the config's "
                              f"models: {known})", path)
        return {**raw, "variants": [v for v in variants if keys[id(v)] in wanted]}
