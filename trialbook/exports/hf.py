"""SFT data as a Hugging Face ``datasets`` dataset on disk (``save_to_disk``), optionally pushed to the Hub.

The rows come from the caller (:mod:`trialbook.sft.trl` maps im.jsonl records to the ``hf``
and ``trl`` shapes). The ``hf`` shape has fixed column types (:data:`HF_FEATURES`); the
``trl`` shape holds tool-call arguments and tool schemas as objects, whose keys differ per
tool, so its types are worked out from the rows themselves in a first pass (Arrow's
permissive unification: the union of the keys seen, ``null`` where a row lacks one).
Rows are streamed twice from their source and written through ``Dataset.from_generator``
into a private cache, so memory does not grow with the dataset. The dataset is saved in a
hidden directory next to the target and moved into place when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from trialbook.errors import ExitCode, TrialbookError

RowSource = Callable[[], Iterator[dict[str, Any]]]
TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class DatasetExistsError(TrialbookError):
    """A dataset (or something else) is already at the target directory."""

    exit_code = ExitCode.CONFLICT


def hf_features() -> Any:
    """The column types of the ``hf`` shape (see :func:`trialbook.sft.trl.hf_row`)."""
    from datasets import Features, Value

    call = {"id": Value("string"), "type": Value("string"),
            "function": {"name": Value("string"), "arguments": Value("string")}}
    message = {"role": Value("string"), "content": Value("string"), "reasoning_content": Value("string"),
               "tool_calls": [call], "tool_call_id": Value("string"), "name": Value("string"),
               "weight": Value("int64")}
    return Features({
        "id": Value("string"), "job": Value("string"), "task": Value("string"), "variant": Value("string"),
        "attempt": Value("int64"), "score": Value("float64"), "resolved": Value("bool"),
        "messages": [message], "tools": Value("string"),
        "source_layout": Value("string"), "trial_path": Value("string"), "converter_version": Value("string"),
    })


def inferred_features(rows: RowSource, batch_size: int = 1000) -> Any:
    """Column types that hold every row (first pass over ``rows``); TrialbookError when none can."""
    import pyarrow as pa
    from datasets import Features

    schema = None
    it = rows()
    while batch := list(islice(it, batch_size)):
        try:
            found = pa.Table.from_pylist(batch).schema
            schema = found if schema is None else pa.unify_schemas([schema, found], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise TrialbookError("these examples cannot share one column type in a `datasets` dataset "
                                 f"({str(exc).splitlines()[0]}); a tool argument or tool schema field "
                                 "takes values of different JSON types: use --format hf, which keeps "
                                 "them as JSON text") from None
    if schema is None:
        raise TrialbookError("no SFT example to export (every trial was filtered out or had no trajectory)")
    return Features.from_arrow_schema(schema)


def _generate(rows: RowSource) -> Iterator[dict[str, Any]]:
    yield from rows()


@dataclass
class HfExport:
    """Where a dataset went and how big it is."""

    out_dir: str
    format: str
    rows: int
    columns: list[str]
    pushed_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "format": self.format, "rows": self.rows, "columns": self.columns,
                "pushed_to": self.pushed_to}


def hub_token() -> str | None:
    """The Hugging Face token from the environment (``HF_TOKEN``), if one is set."""
    return next((os.environ[k] for k in TOKEN_ENV if os.environ.get(k)), None)


def save_dataset(rows: RowSource, out: Path, fmt: str, *, features: Any = None, force: bool = False,
                 push_to_hub: str | None = None) -> HfExport:
    """Write the rows as a dataset at ``out`` (``datasets.load_from_disk(out)`` reads it back).

    ``features`` None: inferred from the rows. ``push_to_hub``: a Hub repo id, pushed with the
    token of ``HF_TOKEN`` (refused before any work when no token is set).
    """
    out = Path(os.path.abspath(out))
    token = hub_token()
    if push_to_hub and not token:
        raise TrialbookError("--push-to-hub needs a Hugging Face token: set HF_TOKEN")
    if (out.exists() or out.is_symlink()) and not force:
        raise DatasetExistsError("already exists; use --force to replace it, or another --out", out)
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    features = features if features is not None else inferred_features(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        dataset = Dataset.from_generator(_generate, features=features, gen_kwargs={"rows": rows},
                                         cache_dir=str(work / "cache"), keep_in_memory=False)
        if len(dataset) == 0:
            raise TrialbookError("no SFT example to export (every trial was filtered out or had no trajectory)")
        dataset.save_to_disk(str(work / "dataset"))
        n, columns = len(dataset), list(dataset.column_names)
        del dataset
        old = work / "old"
        if out.exists() or out.is_symlink():
            os.rename(out, old)
        os.rename(work / "dataset", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = HfExport(out_dir=str(out), format=fmt, rows=n, columns=columns)
    if push_to_hub:
        from datasets import load_from_disk

        load_from_disk(str(out)).push_to_hub(push_to_hub, token=token)
        result.pushed_to = push_to_hub
    return result
