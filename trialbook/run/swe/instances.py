"""SWE-style instance files: one SWE-bench row per task, in JSONL or as a JSON list.

A row needs ``instance_id``, ``repo``, ``base_commit``, ``problem_statement``, ``test_patch``,
``FAIL_TO_PASS`` and ``PASS_TO_PASS`` (a list, or a JSON-encoded list as SWE-bench datasets
store them); ``patch`` (the gold patch) is needed when a variant runs the oracle. Optional:
``test_cmd`` (default ``python3 -m pytest -rA -p no:cacheprovider``), ``test_directives``
(what is appended to ``test_cmd``; default the files ``test_patch`` touches), ``log_parser``
(default ``pytest``; swebench's ``parse_log_*`` names are accepted), ``timeout_s`` (the
verifier's timeout for this instance), and for ``environment.type: docker|podman`` either
``image_name`` (an image to run in) or ``dockerfile`` (a Dockerfile to build it from). Any other key (``version``, ``hints_text``, ...) is
kept as task metadata, unless it is a near-miss of a known key, which is refused.

``repo`` is a git URL, a local path (relative paths are resolved against the instance
file's directory), or SWE-bench's ``owner/name``, meaning ``https://github.com/owner/name.git``
when no such local directory exists. Every problem is a one-line :class:`TaskError`
naming the file and the line (JSONL) or the list position (JSON), and the instance.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trialbook.errors import ConfigError, SourceError, TaskError
from trialbook.grading.log_parsers import get_log_parser
from trialbook.jsonio import jsonl_values
from trialbook.layout.paths import trial_dir_name
from trialbook.run.tasks import select_names

DEFAULT_TEST_CMD = "python3 -m pytest -rA -p no:cacheprovider"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")
_GITHUB_SHORT = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# "--- a/path" (a file that existed) and "+++ b/path" (a file that exists after) lines of a diff.
_DIFF_FILE = re.compile(r"^(?:--- a/|\+\+\+ b/)(.+?)\t?$")


class InstanceError(TaskError, ConfigError):
    """A broken row of an instance file: a task error, and a config error of the job (it stops the job at start)."""


class SweInstance(BaseModel):
    """One SWE-bench-style instance, validated strictly (types are not coerced)."""

    model_config = ConfigDict(extra="allow", strict=True)

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str | None = Field(default=None, description="The gold patch (applied by the oracle)")
    test_patch: str
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str]
    test_cmd: str = DEFAULT_TEST_CMD
    test_directives: list[str] | None = Field(
        default=None, description="Appended to test_cmd; default the files test_patch touches")
    log_parser: str = "pytest"
    timeout_s: float | None = Field(default=None, gt=0)
    image_name: str | None = Field(default=None, description="docker/podman: the image the instance runs in")
    dockerfile: str | None = Field(default=None, description="docker/podman: a Dockerfile to build the "
                                   "instance's image from (relative to the instance file; its directory is the "
                                   "build context)")

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        """SWE-bench datasets store the test lists as JSON-encoded strings; decode those."""
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("expected a list of test names or a JSON-encoded one") from None
            return decoded
        return value

    @field_validator("instance_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        trial_dir_name(value, "v", 1, single=True)  # one path component, no '..', no leading '.'
        return value

    @field_validator("base_commit")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA.fullmatch(value):
            raise ValueError(f"{value!r} is not a commit id (7-64 lowercase hex digits)")
        return value

    @field_validator("repo", "problem_statement", "test_cmd")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("image_name", "dockerfile")
    @classmethod
    def _no_blank(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\0" in value):
            raise ValueError("must not be empty")
        return value

    @field_validator("log_parser")
    @classmethod
    def _known_parser(cls, value: str) -> str:
        try:
            get_log_parser(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return value

    @property
    def extras(self) -> dict[str, Any]:
        """Keys of the row that are not fields (SWE-bench's ``version``, ``hints_text``, ...)."""
        return dict(self.model_extra or {})

    def test_files(self) -> list[str]:
        """Files ``test_patch`` modifies, deletes or creates, in order of appearance."""
        return patch_files(self.test_patch)

    def test_command(self) -> str:
        """``test_cmd`` followed by the test directives (default: the test files test_patch leaves), shell-quoted."""
        if self.test_directives is None:
            directives = patch_files(self.test_patch, after_only=True)
        else:
            directives = self.test_directives
        return " ".join([self.test_cmd, *(shlex.quote(d) for d in directives)])


def patch_files(patch: str, *, after_only: bool = False) -> list[str]:
    """Paths a unified git diff touches, first-seen order (``/dev/null`` left out).

    ``after_only``: just the files that exist once the patch is applied (not deleted ones).
    """
    seen: dict[str, None] = {}
    for line in patch.splitlines():
        m = _DIFF_FILE.match(line)
        if m and (not after_only or line.startswith("+++ ")):
            seen.setdefault(m.group(1), None)
    return list(seen)


def resolve_repo(repo: str, base_dir: Path) -> str:
    """A git URL as given; an existing local path made absolute; ``owner/name`` as a GitHub URL."""
    if _URL.match(repo):
        return repo
    local = Path(repo).expanduser()
    local = local if local.is_absolute() else base_dir / local
    if not local.exists() and _GITHUB_SHORT.fullmatch(repo):
        return f"https://github.com/{repo}.git"
    return str(local.resolve())


def resolve_dockerfile(inst: SweInstance, instances_file: Path) -> Path | None:
    """The instance's ``dockerfile`` as an absolute path, checked: it exists, and its directory (the
    build context, hashed and sent to the engine) is not the instance file's own (often a block)."""
    if inst.dockerfile is None:
        return None
    base_dir = instances_file.resolve().parent
    path = Path(inst.dockerfile).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    where = f"instance {inst.instance_id!r}: dockerfile {inst.dockerfile}"
    if not path.is_file():
        raise InstanceError(f"{where}: no such file", instances_file)
    if path.parent == base_dir:
        raise InstanceError(f"{where}: put the Dockerfile in a directory of its own (its directory is the "
                            "build context), not beside the instance file", instances_file)
    return path


def _describe(exc: ValidationError) -> str:
    """One line for the first validation problem, with a hint for a misspelt key."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return f"missing field {where!r}"
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {msg}{more}"


def _near_miss(row: dict[str, Any]) -> str | None:
    """A key that looks like a misspelt field name (``log_parsr``), which would otherwise be ignored."""
    fields = set(SweInstance.model_fields)
    for key in row:
        if key in fields:
            continue
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.8)
        if close:
            return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return None


def _rows(path: Path) -> list[tuple[str, Any]]:
    """(where, parsed row) pairs: ``line N`` for JSONL, ``item N`` for a JSON list."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstanceError("instance file not found", path, not_found=True) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"cannot read instance file: {exc}", path) from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InstanceError(f"line {exc.lineno}: invalid JSON: {exc.msg}", path) from None
        return [(f"item {i}", row) for i, row in enumerate(data, start=1)]
    try:
        return [(f"line {n}", value) for n, value in jsonl_values(text.encode("utf-8"), path, partial_last_line=False)]
    except SourceError as exc:  # the user's instance file: a task error naming the line
        raise InstanceError(exc.message, path) from None


def load_swe_instances(
    path: Path,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    need_gold_patch: bool = False,
) -> list[SweInstance]:
    """Parse and check every row, then keep those selected by the include/exclude globs (sorted by id).

    Every row is checked, selected or not, so a broken file fails before anything runs.
    ``need_gold_patch`` (a variant runs the oracle) makes ``patch`` required. ``repo`` is
    kept as written; :func:`resolve_repo` turns it into an address.
    """
    instances: dict[str, SweInstance] = {}
    for where, row in _rows(path):
        label = where
        if isinstance(row, dict) and isinstance(row.get("instance_id"), str):
            label = f"{where} (instance {row['instance_id']!r})"
        if not isinstance(row, dict):
            raise InstanceError(f"{label}: expected a JSON object, got {type(row).__name__}", path)
        hint = _near_miss(row)
        if hint:
            raise InstanceError(f"{label}: {hint}", path)
        try:
            inst = SweInstance.model_validate(row)
        except ValidationError as exc:
            raise InstanceError(f"{label}: {_describe(exc)}", path) from None
        except TaskError as exc:  # an unsafe instance_id (raised by trial_dir_name)
            raise InstanceError(f"{label}: {exc.message}", path) from None
        if need_gold_patch and inst.patch is None:
            raise InstanceError(f"{label}: missing field 'patch' (the gold patch the oracle applies)", path)
        if inst.image_name and inst.dockerfile:
            raise InstanceError(f"{label}: give image_name or dockerfile, not both", path)
        if inst.instance_id in instances:
            raise InstanceError(f"{label}: duplicate instance_id", path)
        instances[inst.instance_id] = inst
    if not instances:
        raise InstanceError("the instance file holds no instances", path)
    selected = select_names(list(instances), include or [], exclude or [])
    if not selected:
        raise InstanceError("no instance matches the include/exclude filters", path)
    return [instances[i] for i in selected]
