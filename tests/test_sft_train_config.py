"""lf_train.yaml, the LLaMA-Factory training config written next to lf.json: LLaMA-Factory's own argument
classes accept every key, and its dataset loader and sharegpt converter find and keep every example.

LLaMA-Factory is installed ``--no-deps`` (no torch), so its ``data_args`` and ``finetuning_args``
modules (which need nothing else) are loaded from the installed files and instantiated with our
values (their ``__post_init__`` checks run); the fields of ``model_args`` (it imports torch) are
read from its source; the training arguments are transformers' ``Seq2SeqTrainingArguments`` plus
those LLaMA-Factory adds. LLaMA-Factory parses the YAML with ``allow_extra_keys=False``, so a key
in none of them would stop training.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from test_sft_cases import TEXT_CASES, sft_input
from test_sft_sharegpt import _load_llamafactory

from trialbook.config import SftConversionConfig
from trialbook.sft import ConvertOptions, convert
from trialbook.sft.job import options_from_config
from trialbook.sft.train_config import TRAIN_FILE


def _lf_root() -> Path:
    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llamafactory is not installed: bash dev/setup.sh --test installs the reference tools")
    return Path(next(iter(spec.submodule_search_locations)))


def _module(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_lf_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _source_fields(path: Path) -> set[str]:
    """Annotated class attributes of every class in ``path`` (the dataclass fields), read without importing."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.target.id for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for node in cls.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.fixture(scope="module")
def lf_args() -> dict[str, Any]:
    root = _lf_root()
    from transformers import Seq2SeqTrainingArguments

    data, finetuning = _module(root / "hparams" / "data_args.py"), _module(root / "hparams" / "finetuning_args.py")
    return {
        "data": data.DataArguments, "finetuning": finetuning.FinetuningArguments,
        "model": _source_fields(root / "hparams" / "model_args.py"),
        "training": _fields(Seq2SeqTrainingArguments) | _source_fields(root / "hparams" / "training_args.py"),
    }


def _convert(tmp_path: Path, train: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    options = options_from_config(SftConversionConfig(train=train or {}))
    result = convert([sft_input(name) for name in TEXT_CASES], tmp_path / "sft", options, dataset_name="tg_job")
    assert result.train_config_path == tmp_path / "sft" / TRAIN_FILE
    return result.out_dir, yaml.safe_load(result.train_config_path.read_text())


def test_every_key_is_a_llamafactory_argument(lf_args: dict[str, Any], tmp_path: Path) -> None:
    _, config = _convert(tmp_path)
    data_keys = config.keys() & _fields(lf_args["data"])
    finetuning_keys = config.keys() & _fields(lf_args["finetuning"])
    known = data_keys | finetuning_keys | lf_args["model"] | lf_args["training"]
    assert sorted(config.keys() - known) == []
    # the data and fine-tuning arguments are built as LLaMA-Factory builds them (their checks run)
    data = lf_args["data"](**{k: config[k] for k in data_keys})
    assert (data.dataset, data.dataset_dir, data.template) == (["tg_job"], str((tmp_path / "sft").resolve()), "qwen")
    finetuning = lf_args["finetuning"](**{k: config[k] for k in finetuning_keys})
    assert (finetuning.stage, finetuning.finetuning_type, finetuning.lora_target) == ("sft", "lora", ["all"])
    assert config["do_train"] is True and config["model_name_or_path"]


def test_llamafactory_loads_the_dataset_it_names(tmp_path: Path) -> None:
    lf = _load_llamafactory()
    out, config = _convert(tmp_path)
    [attr] = lf["parser"].get_dataset_list([config["dataset"]], config["dataset_dir"])
    assert (attr.load_from, attr.formatting) == ("file", "sharegpt")
    examples = orjson.loads((Path(config["dataset_dir"]) / attr.dataset_name).read_bytes())
    assert len(examples) == len(TEXT_CASES)
    converter = lf["converter"].get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(media_dir=""))
    for example in examples:
        aligned = converter(example)
        assert aligned["_prompt"] and aligned["_response"], "LLaMA-Factory dropped an example"
    longest = orjson.loads((out / "lf.stats.json").read_bytes())["tokens"]["max"]
    assert longest > 0 and config["cutoff_len"] == max(longest, 2048)  # no example is cut


def test_a_key_llamafactory_does_not_know_is_caught(lf_args: dict[str, Any], tmp_path: Path) -> None:
    _, config = _convert(tmp_path, {"lora_rnak": 16})
    known = _fields(lf_args["data"]) | _fields(lf_args["finetuning"]) | lf_args["model"] | lf_args["training"]
    assert sorted(config.keys() - known) == ["lora_rnak"]


def test_block_settings_override_the_defaults(lf_args: dict[str, Any], tmp_path: Path) -> None:
    train = {"model_name_or_path": "/models/my-coder", "template": "llama3", "finetuning_type": "full",
             "num_train_epochs": 1.0, "output_dir": "/ckpt/run1"}
    _, config = _convert(tmp_path, train)
    assert {k: config[k] for k in train} == train
    assert lf_args["finetuning"](**{k: config[k] for k in config.keys() & _fields(lf_args["finetuning"])}
                                 ).finetuning_type == "full"
    options = ConvertOptions(max_tokens=9000, train=None)
    convert([sft_input(TEXT_CASES[0])], tmp_path / "cut", options, dataset_name="x")
    assert yaml.safe_load((tmp_path / "cut" / TRAIN_FILE).read_text())["cutoff_len"] == 9000
