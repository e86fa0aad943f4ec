"""Config errors show every problem with its line and a suggestion, in one line naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trialbook.config import load_config
from trialbook.errors import ConfigError


def test_every_error_with_line_numbers_and_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("kind: eval\ntasks:\n  path: tasks\n  inclde: ['a*']\nvaraints:\n"
                    "  - name: a\n    agent: oracle\n    modle: gpt\nattempts: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: 3 problems: line 4: tasks.inclde: unknown key (did you mean include?); "
        "line 5: varaints: unknown key (did you mean variants?); "
        "line 9: attempts: Input should be greater than or equal to 1")


def test_nested_list_items_and_a_real_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("kind: eval\ntasks: {path: tasks}\nvariants:\n  - name: a\n    agent: oracle\n"
                    "  - name: b\n    agnet: nop\n    timout: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "line 7: variants[1].agnet: unknown key (did you mean agent?)" in message
    assert "line 8: variants[1].timout: unknown key" in message and "\n" not in message
    path.write_text("kind: eval\ntasks: {path: tasks}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: variants: required, but missing"


def test_schema_config_prints_the_config_schema() -> None:
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "schema", "config"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert {"kind", "tasks", "variants", "attempts"} <= set(schema["properties"])
