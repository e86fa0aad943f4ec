"""The block's ``config.yaml``: schema, loading with one-line errors, and secret redaction.

The same model serves eval and trajgen blocks. Unknown keys are refused so a typo is a
clear error at job start rather than a silently ignored setting.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from trialbook import secrets, yamlio
from trialbook.config_errors import format_errors
from trialbook.errors import ConfigError
from trialbook.model.limits import Limits, effective, parse_size
from trialbook.model.schemas import register_schema
from trialbook.secrets import CREDENTIAL_KEY, REDACTED


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: What a variable name of ``env:`` may look like (bwrap and the shell accept no other).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Each ``env:`` value, once ``${VAR}`` is expanded, and all of them together, travel on the
#: sandbox's command line, where the kernel takes at most 128 KiB per argument and ~2 MiB in all.
MAX_ENV_VALUE_BYTES = 64 * 1024
MAX_ENV_TOTAL_BYTES = 1024 * 1024


def _check_env(env: dict[str, str]) -> dict[str, str]:
    """Names a sandbox can set, values without NUL bytes (static checks; sizes: :func:`runtime_problems`)."""
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a variable name (letters, digits and '_', not a digit first)")
        if "\0" in value:
            raise ValueError(f"{name}: the value holds a NUL byte")
    return env


class TasksConfig(_Strict):
    """Where tasks come from and which ones to run."""

    path: str | None = Field(default=None, description="Dataset dir of Harbor-format tasks")
    instances: str | None = Field(default=None, description="SWE-style instances (JSONL or JSON list)")
    dataset_name: str | None = Field(default=None, description="Name used to detect the benchmark type")
    include: list[str] = Field(default_factory=list, description="fnmatch globs on task names")
    exclude: list[str] = Field(default_factory=list)

    def dataset_label(self) -> str | None:
        """The dataset's name: ``dataset_name``, else the instances file's or tasks directory's name."""
        return self.dataset_name or Path(self.instances or self.path or "").name or None

    @field_validator("include", "exclude")
    @classmethod
    def _no_paths(cls, globs: list[str]) -> list[str]:
        for g in globs:
            if "/" in g or "\\" in g:
                raise ValueError(f"task name glob {g!r} must not contain a path separator")
        return globs


class VariantConfig(_Strict):
    """One agent configuration compared in the job."""

    name: str
    agent: str
    model: str | None = None
    command: str | None = Field(default=None, description="Command line of the `command` agent")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Name of the env var holding the API key")
    env: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict, description="Agent-specific settings")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"variant name {name!r}: use letters, digits, '.', '_' or '-'")
        return name


class TimeoutsConfig(_Strict):
    """Per-phase timeouts in seconds (a task.toml may set its own agent/verifier timeouts)."""

    environment_setup: float = Field(default=120.0, gt=0)
    agent: float = Field(default=600.0, gt=0)
    verifier: float = Field(default=300.0, gt=0)


_SIZES = ("memory", "tmp", "storage", "output", "reward_file")


class LimitsConfig(_Strict):
    """Resource limits of a trial (sizes like ``4GiB``, ``512M``; null: not limited). See docs/sandbox.md."""

    memory: str | int | None = Field(default="4GiB", description="Memory of each phase (RAM + swap)")
    pids: int | None = Field(default=256, ge=1, description="Processes and threads at once")
    cpus: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="CPU cores (a quota)")
    tmp: str | int | None = Field(default="1GiB", description="Size of the private /tmp (counts as memory)")
    storage: str | int | None = Field(default="10GiB", description="Disk use of /app and /logs")
    output: str | int | None = Field(default="50MiB", description="Kept of each output file (stdout, tests)")
    reward_file: str | int | None = Field(default="1MiB", description="Largest reward.json/reward.txt read")

    @field_validator(*_SIZES)
    @classmethod
    def _size(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            try:
                parse_size(value, "size")
            except ConfigError as exc:
                raise ValueError(exc.message.removeprefix("size: ")) from None
        return value

    def to_limits(self) -> Limits:
        sizes = {name: parse_size(getattr(self, name), name) if getattr(self, name) is not None else None
                 for name in _SIZES}
        return Limits(pids=self.pids, cpus=self.cpus, **sizes)


class MaxLimitsConfig(LimitsConfig):
    """Caps on what a task.toml may ask for; a limit left out is not capped."""

    memory: str | int | None = None
    pids: int | None = Field(default=None, ge=1)
    cpus: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tmp: str | int | None = None
    storage: str | int | None = None
    output: str | int | None = None
    reward_file: str | int | None = None


class EnvironmentConfig(_Strict):
    """How trials are isolated: ``local`` (bubblewrap, the host's system read-only), ``docker`` or
    ``podman`` (the task's ``environment/Dockerfile`` built and run), or a class of your own."""

    type: str = Field(default="local", pattern=r"^[A-Za-z0-9_.-]+$",
                      description="local, docker, podman, or an installed environment's name")
    import_path: str | None = Field(default=None, description="Your own environment class: 'package.module:Class'")
    network: bool = False
    engine_flags: list[str] = Field(default_factory=list,
                                    description="docker/podman: flags before every engine command "
                                                "(e.g. ['--runtime', 'runc'])")
    run_flags: list[str] = Field(default_factory=list,
                                 description="docker/podman: extra flags of 'run' and 'build' "
                                             "(e.g. ['--ulimit', 'nofile=1024:1024'])")
    build_timeout: float = Field(default=1800.0, gt=0, description="docker/podman: seconds an image build may take")
    env: dict[str, str] = Field(default_factory=dict, description="Extra env vars inside the sandbox")
    ro_binds: list[str] = Field(default_factory=list, description="Extra host paths mounted read-only (absolute)")
    limits: LimitsConfig = Field(default_factory=LimitsConfig,
                                 description="Limits of a trial whose task.toml asks for none")
    max_limits: MaxLimitsConfig = Field(default_factory=MaxLimitsConfig,
                                        description="Caps on what a task.toml [environment] may ask for")

    _effective: dict[Limits, Limits] = PrivateAttr(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @field_validator("ro_binds")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for p in paths:
            if not p.startswith("/") or "\0" in p:
                raise ValueError(f"{p!r} must be an absolute path (mounted at the same place in the sandbox)")
        return paths

    def effective_limits(self, requested: Limits) -> Limits:
        """A task's limits: its request (or the default), capped (computed once per distinct request)."""
        found = self._effective.get(requested)
        if found is None:
            found = self._effective[requested] = effective(requested, self.limits.to_limits(),
                                                           self.max_limits.to_limits())
        return found


class RetriesConfig(_Strict):
    infra_error: int = Field(default=0, ge=0, le=100, description="Reruns of a trial after an infra_error")


#: ``execution.address``: ``auto``, ``local``, a Ray Client URL or a cluster's GCS address (HOST:PORT).
_RAY_ADDRESS = re.compile(r"auto|local|(ray://)?[A-Za-z0-9_.\-]+:[0-9]{1,5}|ray://\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")


class ExecutionConfig(_Strict):
    """Where trials run: on this machine (``local``) or as Ray tasks on a cluster (``ray``; docs/ray.md)."""

    backend: Literal["local", "ray"] = Field(default="local", description="local, or ray (pip install 'trialbook[ray]')")
    address: str = Field(default="auto", description="ray: auto (the cluster this machine belongs to), local "
                                                     "(start Ray on this machine), ray://HOST:PORT or HOST:PORT")
    max_retries: int = Field(default=3, ge=0, le=100,
                             description="ray: reruns of a trial whose node or worker process was lost")

    @field_validator("address")
    @classmethod
    def _address(cls, address: str) -> str:
        if not _RAY_ADDRESS.fullmatch(address):
            raise ValueError(f"{address!r} is not a Ray address: use auto, local, ray://HOST:PORT or HOST:PORT")
        return address


class OutputConfig(_Strict):
    eval_results_dir: str | None = None
    raw_trajectories_dir: str | None = None
    sft_data_dir: str | None = None
    layout: Literal["native", "velora"] = Field(
        default="native",
        description="velora: also write each trial, as it finishes, in the VeloraHarness layout "
                    "(Trajectory_results/{Benchmark}/{Instance}/{Model}/Run{N}/); see docs/swe-layouts.md",
    )
    trajectory_results_dir: str = Field(
        default="evaluation/evaluation_outputs",
        description="With layout velora: where Trajectory_results/ is written (relative to the block)",
    )
    model_dirs: Literal["model", "variant"] = Field(
        default="model",
        description="With layout velora: {Model} folders named by model key (Gemini, Claude, GPT) or by variant",
    )


class RuntimeInfo(_Strict):
    output: OutputConfig = Field(default_factory=OutputConfig)


class SftConversionConfig(_Strict):
    enabled: bool = False
    min_reward: float | None = None
    resolved_only: bool = False
    max_tokens: int | None = None
    per_task_cap: int | None = None
    thinking: Literal["keep", "strip"] = "keep"
    tokenizer: str | None = None
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="LLaMA-Factory training arguments written to lf_train.yaml next to lf.json, over its "
                    "defaults (model_name_or_path, template, finetuning_type, ...); see docs/sft.md",
    )


class AnalysisConfig(_Strict):
    enabled: bool = True
    gold: str | None = None


class MonitorConfig(_Strict):
    stall_after_s: float = Field(default=300.0, gt=0)


class IndexConfig(_Strict):
    """What ``trialbook reindex`` puts in ``results/index.db`` besides the block's own jobs."""

    roots: list[str] = Field(
        default_factory=list,
        description="Other results trees to index (Harbor/Pier jobs/, Trajectory_results/, SWE-bench "
                    "logs, legacy results/...); relative paths are resolved against the block",
    )


class ArtifactsConfig(_Strict):
    """Where finished trials, job files, archives and SFT data are also kept (docs/artifact-store.md).

    Credentials are never part of the config: they come from the standard AWS environment
    variables or profile (for ``s3://``), or the backend's own configuration.
    """

    store: str | None = Field(
        default=None,
        description="Object store URL the block's outputs are uploaded to: s3://bucket/prefix or any fsspec "
                    "URL (gs://, az://, file:///abs/path, ...); null: nothing is uploaded",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra fsspec storage options of the store (e.g. {requester_pays: true}); never credentials",
    )
    retries: int = Field(default=3, ge=1, le=20, description="Attempts of each upload before it is recorded as failed")

    @field_validator("store")
    @classmethod
    def _store_url(cls, url: str | None) -> str | None:
        if url is not None:
            from trialbook.layout.store_url import StoreURL

            try:
                StoreURL.parse(url)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return url

    @field_validator("options")
    @classmethod
    def _no_credentials(cls, options: dict[str, Any]) -> dict[str, Any]:
        from trialbook.layout.store_url import credential_option

        for key in options:
            if credential_option(str(key)):
                raise ValueError(f"{key!r} looks like a credential: credentials come only from the standard "
                                 "environment or profile (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...), never config.yaml")
        return options


#: Attempts of a SWE-style block that does not set ``attempts`` (VeloraHarness's pass@8: Run1..Run8).
SWE_DEFAULT_ATTEMPTS = 8

#: Upper bounds that catch typos (``attempts: 100000000``) before a plan fills the memory.
MAX_ATTEMPTS = 10_000
MAX_CONCURRENCY = 1_024


class BlockConfig(_Strict):
    """The whole of ``config.yaml``."""

    kind: Literal["eval", "trajgen"]
    name: str | None = None
    tasks: TasksConfig
    variants: list[VariantConfig] = Field(min_length=1)
    attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS,
                          description="Attempts per task and variant; default 1, and 8 (pass@8) for SWE-style "
                                      "instances (tasks.instances), as the VeloraHarness layout has it")
    concurrency: int = Field(default=4, ge=1, le=MAX_CONCURRENCY)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    runtime_info: RuntimeInfo = Field(default_factory=RuntimeInfo)
    sft_conversion: SftConversionConfig = Field(default_factory=SftConversionConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    artifacts: ArtifactsConfig = Field(default_factory=ArtifactsConfig)
    secrets: list[str] = Field(default_factory=list, description="Dotted paths of values to redact")
    status: dict[str, Any] | None = None

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[VariantConfig]) -> list[VariantConfig]:
        names = [v.name for v in variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        return variants

    @model_validator(mode="after")
    def _swe_default_attempts(self) -> BlockConfig:
        """SWE-style instances default to pass@8: without an ``attempts:`` key, run 8 attempts."""
        if "attempts" not in self.model_fields_set and self.tasks.instances:
            self.attempts = SWE_DEFAULT_ATTEMPTS
        return self

    def output_dir(self, block_root: Path) -> Path:
        """The jobs directory: ``eval_results_dir`` or ``raw_trajectories_dir``, default artifacts/jobs."""
        out = self.runtime_info.output
        rel = out.eval_results_dir if self.kind == "eval" else out.raw_trajectories_dir
        return (block_root / (rel or "artifacts/jobs")).resolve()


register_schema("config", BlockConfig)


def parse_config(data: Any, path: Path, text: str | None = None) -> BlockConfig:
    """Validate already-parsed YAML data; every error is named with its line and key.

    ``text`` is the YAML the data came from (read from ``path`` when not given) for line numbers.
    """
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", path)
    try:
        return BlockConfig.model_validate(data)
    except ValidationError as exc:
        if text is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = None
        raise ConfigError(format_errors(exc, BlockConfig, text), path) from None


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file (:func:`trialbook.yamlio.read_yaml`): problems are a :class:`ConfigError`."""
    return yamlio.read_yaml(path, ConfigError)


def load_config(path: str | Path) -> BlockConfig:
    """Load and validate a block ``config.yaml``."""
    path = Path(path)
    return parse_config(read_yaml(path), path)


def redact_text(text: str, extra: list[str] | None = None) -> str:
    """Replace the run's secret values (:mod:`trialbook.secrets`) and ``extra`` values in ``text``."""
    text = secrets.current().text(text)
    return secrets.SecretSet(extra or []).text(text) if extra else text


def redact_config(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config mapping with secrets replaced by ``***REDACTED***``.

    Redacted: literal values under keys that name a credential (``api_key``, ``password``, ...;
    not ``*_env`` keys, which only *name* a variable, and not ``max_tokens`` or ``tokenizer``),
    the dotted paths listed in ``secrets:``, and the run's secret values inside any string.
    """
    out = copy.deepcopy(data)
    for dotted in out.get("secrets") or []:
        _redact_path(out, str(dotted).split("."))
    return _redact_walk(out)


def _redact_path(node: Any, parts: list[str]) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = REDACTED
                return
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            if last:
                node[part] = REDACTED
                return
            node = node[part]
        else:
            return


def _redact_walk(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _redact_walk(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact_walk(v, key) for v in node]
    if isinstance(node, str):
        if key and CREDENTIAL_KEY.search(key) and not key.endswith("_env") and node != REDACTED:
            return REDACTED
        return redact_text(node)
    return node


def runtime_problems(config: BlockConfig) -> list[str]:
    """What would otherwise fail trial by trial: missing ``ro_binds`` paths, unset ``${VAR}``s."""
    problems = [f"environment.ro_binds: {p} does not exist" for p in config.environment.ro_binds
                if not os.path.exists(p)]
    places = [(f"environment.env.{k}", v) for k, v in config.environment.env.items()]
    for variant in config.variants:
        places += [(f"variant {variant.name}: env.{k}", v) for k, v in variant.env.items()]
    total = 0
    for where, value in places:
        try:
            size = len(expand_env(value).encode("utf-8", "surrogateescape"))
        except ConfigError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        total += size
        if size > MAX_ENV_VALUE_BYTES:
            problems.append(f"{where}: the value is {size:,} bytes, over the {MAX_ENV_VALUE_BYTES // 1024} KiB "
                            "an environment variable may hold (put it in a file under ro_binds)")
    if total > MAX_ENV_TOTAL_BYTES:
        problems.append(f"env: the values add up to {total:,} bytes, over the {MAX_ENV_TOTAL_BYTES // 1024} KiB "
                        "the sandbox's command line can carry (put them in files under ro_binds)")
    return problems


def expand_env(value: str, environ: dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` references at run time (values never reach written files)."""
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})")
        return env[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, value)
