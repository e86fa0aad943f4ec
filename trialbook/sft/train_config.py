"""``lf_train.yaml``: a LLaMA-Factory training config for the ``lf.json`` written next to it.

The trajgen block's ``lf.json`` is the input of a downstream SFT step. So that step has
something to run, every conversion also writes a ready LLaMA-Factory config
(``llamafactory-cli train lf_train.yaml``): supervised fine-tuning (``stage: sft``) on the
dataset that ``dataset_info.json`` registers, found through ``dataset_dir`` (this directory,
absolute, so the command works from anywhere). ``cutoff_len`` is ``max_tokens`` when set,
else the longest kept example (counted with the conversion's tokenizer), so no example is
cut. Everything else has the defaults below, and ``sft_conversion.train`` in config.yaml
overrides or adds any LLaMA-Factory argument (``model_name_or_path``, ``template``,
``finetuning_type``, ``output_dir``, ...). ``output_dir`` is relative to where the command
runs. Keys are LLaMA-Factory's model, data, fine-tuning and Hugging Face training arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trialbook.jsonio import atomic_write_text

TRAIN_FILE = "lf_train.yaml"

#: The defaults: LoRA SFT of a Qwen2.5 coder model (whose chat template, ``qwen``, renders the
#: function calls and tools of lf.json), as in LLaMA-Factory's own LoRA SFT examples.
DEFAULTS: dict[str, Any] = {
    "model_name_or_path": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "trust_remote_code": True,
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "lora_rank": 8,
    "lora_target": "all",
    "template": "qwen",
    "overwrite_cache": True,
    "preprocessing_num_workers": 4,
    "logging_steps": 10,
    "save_steps": 500,
    "plot_loss": True,
    "overwrite_output_dir": True,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 8,
    "learning_rate": 1.0e-4,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "bf16": True,
}
#: The shortest cutoff written (LLaMA-Factory's own default is 2048).
MIN_CUTOFF = 2048


def train_config(out_dir: Path, dataset_name: str, longest_example: int | None, max_tokens: int | None,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The training config of the dataset ``dataset_name`` in ``out_dir``; ``overrides`` win."""
    cutoff = max_tokens or max(longest_example or 0, MIN_CUTOFF)
    config = {**DEFAULTS, "dataset": dataset_name, "dataset_dir": str(out_dir.resolve()), "cutoff_len": cutoff,
              "output_dir": f"saves/{dataset_name}"}
    config.update(overrides or {})
    return config


def write_train_config(out_dir: Path, config: dict[str, Any]) -> Path:
    """Write ``out_dir/lf_train.yaml`` (with a header saying how to run it); its path."""
    path = out_dir / TRAIN_FILE
    header = ("# LLaMA-Factory training config for lf.json, written by trialbook's SFT conversion.\n"
              f"# Run: llamafactory-cli train {path}\n"
              "# Change it through sft_conversion.train in the block's config.yaml (this file is rewritten).\n")
    atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False))
    return path
