"""im -> LLaMA-Factory sharegpt, checked against LLaMA-Factory's own converter, parser and formatters.

LLaMA-Factory (``pip install llamafactory --no-deps``) cannot be imported normally without
torch: ``llamafactory.data/__init__`` pulls the collator (torch) and ``extras.constants``
imports peft. Its converter, parser and formatter modules themselves need only ``datasets``,
``fsspec``, ``huggingface_hub`` and ``transformers`` (no torch), so we load exactly those
modules from the installed package, with two stand-ins while importing: ``peft.utils``
(two file-name constants) and ``llamafactory.extras.misc`` (torch helpers; the parser uses
only ``use_modelscope``/``use_openmind``, which matter for hub datasets, not local files).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_sft_cases import CASES, TEXT_CASES, sft_input

from trialbook.sft import ConvertOptions, convert
from trialbook.sft.messages import trajectory_to_messages
from trialbook.sft.sharegpt import dataset_info_entry, to_sharegpt


def _load_llamafactory() -> dict[str, types.ModuleType]:
    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llamafactory is not installed: bash dev/setup.sh --test installs the reference tools")
    for needed in ("datasets", "fsspec", "huggingface_hub", "transformers"):
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed; LLaMA-Factory's data modules import it")
    root = Path(next(iter(spec.submodule_search_locations)))
    saved = set(sys.modules)

    def package(name: str, path: Path) -> None:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module

    try:
        package("llamafactory", root)
        package("llamafactory.data", root / "data")
        package("llamafactory.extras", root / "extras")
        if importlib.util.find_spec("peft") is None:
            peft = types.ModuleType("peft")
            peft.__path__ = []
            # transformers asks importlib.util.find_spec("peft"), which needs a spec.
            peft.__spec__ = importlib.machinery.ModuleSpec("peft", None, is_package=True)
            peft_utils = types.ModuleType("peft.utils")
            peft_utils.SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors"
            peft_utils.WEIGHTS_NAME = "adapter_model.bin"
            sys.modules["peft"], sys.modules["peft.utils"] = peft, peft_utils
        misc = types.ModuleType("llamafactory.extras.misc")
        misc.use_modelscope = lambda: False
        misc.use_openmind = lambda: False
        sys.modules["llamafactory.extras.misc"] = misc
        return {
            name: importlib.import_module(f"llamafactory.data.{name}")
            for name in ("converter", "parser", "formatter", "data_utils")
        }
    finally:
        # Forget the partial llamafactory package and the stand-ins; keep real libraries imported.
        for name in list(sys.modules):
            if name not in saved and name.split(".")[0] in ("llamafactory", "peft"):
                del sys.modules[name]


@pytest.fixture(scope="module")
def lf() -> dict[str, types.ModuleType]:
    return _load_llamafactory()


def _example(name: str, thinking: str = "keep") -> dict[str, Any]:
    conv = trajectory_to_messages(CASES[name](), thinking=thinking)
    example, _ = to_sharegpt(conv.messages, conv.tools)
    # what LLaMA-Factory actually reads: the JSON text
    return orjson.loads(orjson.dumps(example))


def _align(lf: dict[str, types.ModuleType], example: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run LLaMA-Factory's sharegpt converter with the attributes parsed from our dataset_info.json."""
    (tmp_path / "dataset_info.json").write_bytes(orjson.dumps(dataset_info_entry("ours", "lf.json")))
    attr = lf["parser"].get_dataset_list(["ours"], str(tmp_path))[0]
    converter = lf["converter"].get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(media_dir=""))
    return converter(example)


def test_dataset_info_parses_with_llamafactory(lf: dict[str, types.ModuleType], tmp_path: Path) -> None:
    (tmp_path / "dataset_info.json").write_bytes(orjson.dumps(dataset_info_entry("trials", "lf.json")))
    attr = lf["parser"].get_dataset_list(["trials"], str(tmp_path))[0]
    assert (attr.load_from, attr.dataset_name, attr.formatting) == ("file", "lf.json", "sharegpt")
    assert (attr.messages, attr.system, attr.tools) == ("conversations", "system", "tools")
    assert (attr.role_tag, attr.content_tag, attr.user_tag, attr.assistant_tag) == ("from", "value", "human", "gpt")
    assert (attr.observation_tag, attr.function_tag, attr.system_tag) == ("observation", "function_call", "system")


@pytest.mark.parametrize("thinking", ["keep", "strip"])
@pytest.mark.parametrize("name", TEXT_CASES)
def test_llamafactory_keeps_every_example_and_aligns_it(
    lf: dict[str, types.ModuleType], tmp_path: Path, name: str, thinking: str
) -> None:
    example = _example(name, thinking)
    aligned = _align(lf, example, tmp_path)
    assert aligned["_prompt"] and aligned["_response"], "LLaMA-Factory dropped the example"
    role = {"human": "user", "gpt": "assistant", "observation": "observation", "function_call": "function"}
    expected = [{"role": role[t["from"]], "content": t["value"]} for t in example["conversations"]]
    assert aligned["_prompt"] + aligned["_response"] == expected
    assert aligned["_system"] == example["system"]
    assert aligned["_tools"] == example["tools"]


@pytest.mark.parametrize("name", TEXT_CASES)
def test_function_calls_and_tools_parse_with_llamafactory_formatters(lf: dict[str, types.ModuleType], name: str) -> None:
    formatter = lf["formatter"]
    example = _example(name)
    thought_words = ("<think>\n", "\n</think>\n\n")  # LLaMA-Factory's default
    for tool_format in ("default", "qwen"):
        function = formatter.FunctionFormatter(slots=["{{content}}"], tool_format=tool_format)
        tools = formatter.ToolFormatter(tool_format=tool_format)
        if example["tools"]:
            assert tools.apply(content=example["tools"])[0]
        for turn in example["conversations"]:
            if turn["from"] != "function_call":
                continue
            rendered = "".join(function.apply(content=turn["value"], thought_words=thought_words))
            payload = orjson.loads(turn["value"].split("</think>\n\n")[-1])
            for call_ in payload if isinstance(payload, list) else [payload]:
                assert call_["name"] in rendered and isinstance(call_["arguments"], dict)


def test_alternation_merges_and_parallel_calls() -> None:
    example = _example("parallel_calls")
    assert example["system"] == "You are a careful software engineer. Use the tools."
    turns = [(t["from"], t["value"]) for t in example["conversations"]]
    assert turns[0] == ("human", "Fix the failing test in tests/test_math.py.")
    assert turns[1][0] == "function_call"
    assert orjson.loads(turns[1][1]) == [
        {"name": "bash", "arguments": {"cmd": "ls"}},
        {"name": "bash", "arguments": {"cmd": "cat tests/test_math.py"}},
    ]
    assert turns[2] == ("observation", "src\ntests\n</tool_response>\n<tool_response>\ndef test_add():\n    assert add(1, 2) == 3\n")
    assert orjson.loads(turns[3][1]) == {"name": "edit", "arguments": {"path": "src/math.py", "old": "a - b"}}
    assert turns[-1] == ("gpt", "The test passes now.")
    tools = orjson.loads(example["tools"])
    assert [t["function"]["name"] for t in tools] == ["bash", "edit"]


def test_reasoning_prefix_and_dropped_text_are_reported() -> None:
    conv = trajectory_to_messages(CASES["reasoning"]())
    example, notes = to_sharegpt(conv.messages, conv.tools)
    call_turn, answer = example["conversations"][1], example["conversations"][3]
    assert call_turn["value"].startswith("<think>\nThe test imports add; check it.\n</think>\n\n{")
    assert answer["value"] == "<think>\nReplace a - b with a + b.\n</think>\n\nadd subtracts; fixed it."
    assert notes.assistant_text_dropped == 1  # "Let me look at the test first." has no sharegpt slot
    stripped = _example("reasoning", "strip")
    assert "<think>" not in orjson.dumps(stripped).decode()


def test_trailing_observation_trimmed_and_leading_assistant_handled() -> None:
    conv = trajectory_to_messages(CASES["ends_on_observation"]())
    example, notes = to_sharegpt(conv.messages, conv.tools)
    assert [t["from"] for t in example["conversations"]] == ["human", "function_call"]
    assert notes.trailing_prompt_trimmed == 1

    conv = trajectory_to_messages(CASES["leading_assistant"]())
    example, notes = to_sharegpt(conv.messages, conv.tools)
    assert example["system"] == "Task: print hello. You have a bash tool."
    assert [(t["from"], t["value"][:5]) for t in example["conversations"]] == [
        ("human", ""),
        ("function_call", '{"nam'),
        ("human", "hello"),  # the tool result and the mid-run system notice, merged prompt-side
        ("gpt", "Print"),
    ]
    assert example["conversations"][2]["value"] == "hello\n\nNote: 1 step left."
    assert orjson.loads(example["tools"]) == [
        {"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {"cmd": {}}}}}
    ]
    assert notes.empty_human_inserted == 1


def test_consecutive_assistant_turns_merge_into_one_function_call() -> None:
    conv = trajectory_to_messages(CASES["consecutive_agents"]())
    example, notes = to_sharegpt(conv.messages, conv.tools)
    first = example["conversations"][1]
    assert first["from"] == "function_call"
    assert first["value"].startswith("<think>\nplan\n</think>\n\n")
    assert orjson.loads(first["value"].split("\n</think>\n\n")[1]) == [
        {"name": "bash", "arguments": {"cmd": "ls"}},
        {"name": "bash", "arguments": {"cmd": "pwd"}},
    ]
    assert notes.assistant_text_dropped == 1 and notes.turns_merged >= 3


def test_copied_context_is_not_trained_in_sharegpt() -> None:
    conv = trajectory_to_messages(CASES["copied_context"]())
    example, notes = to_sharegpt(conv.messages, conv.tools)
    text = orjson.dumps(example).decode()
    assert "old1" not in text and '\\"cmd\\":\\"ls\\"' not in text and "pytest" not in text
    assert example["conversations"][0]["value"] == (
        "Fix the failing test in tests/test_math.py.\n\nSummary so far: the bug is in src/math.py."
    )
    assert notes.untrained_removed == 4  # 2 weight-0 assistant turns + their 2 tool results


def test_no_tools_gives_empty_tools_string() -> None:
    example = _example("no_tools")
    assert example["tools"] == ""
    assert [t["from"] for t in example["conversations"]] == ["human", "gpt", "human", "gpt"]


@pytest.mark.parametrize("thinking", ["keep", "strip"])
def test_every_written_lf_example_survives_llamafactory(lf: dict[str, types.ModuleType], tmp_path: Path, thinking: str) -> None:
    result = convert([sft_input(name) for name in CASES], tmp_path, ConvertOptions(thinking=thinking), dataset_name="trials")
    attr = lf["parser"].get_dataset_list(["trials"], str(tmp_path))[0]
    converter = lf["converter"].get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(media_dir=""))
    examples = orjson.loads((tmp_path / attr.dataset_name).read_bytes())
    assert len(examples) == result.kept == len(TEXT_CASES)
    for example in examples:
        aligned = converter(example)
        assert aligned["_prompt"] and aligned["_response"], example
        assert len(aligned["_prompt"]) + len(aligned["_response"]) == len(example["conversations"])
