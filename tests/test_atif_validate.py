"""The raw-JSON ATIF validator (every rule, every violation, JSON paths) and its CLI commands."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from trialbook.cli import schema as schema_cli
from trialbook.cli import validate as validate_cli
from trialbook.errors import SourceError
from trialbook.model.atif_validate import Violation, validate_file, validate_trajectory
from trialbook.model.trajectory_builder import TrajectoryBuilder

FIXTURES = Path(__file__).parent / "fixtures" / "atif"


def good(version: str = "ATIF-v1.8") -> dict:
    """A valid trajectory with every kind of object, used as the base of the bad files."""
    return {
        "schema_version": version,
        "session_id": "s-1",
        "agent": {"name": "a", "version": "1"},
        "steps": [
            {"step_id": 1, "source": "system", "message": "sys"},
            {"step_id": 2, "source": "user", "message": "task", "timestamp": "2025-01-01T00:00:00Z"},
            {
                "step_id": 3,
                "source": "agent",
                "message": "run",
                "tool_calls": [
                    {"tool_call_id": "c1", "function_name": "bash", "arguments": {"cmd": "ls"}},
                    {"tool_call_id": "c2", "function_name": "bash", "arguments": {}},
                ],
                "observation": {"results": [{"source_call_id": "c1", "content": "a"}, {"source_call_id": "c2"}]},
                "metrics": {"prompt_tokens": 10, "completion_tokens": 2, "cached_tokens": 4, "cost_usd": 0.1},
            },
        ],
        "final_metrics": {"total_steps": 3},
    }


def rules(violations: list[Violation]) -> list[tuple[str, str]]:
    return [(v.path, v.rule) for v in violations]


def test_valid_files_have_no_violations() -> None:
    assert validate_trajectory(good()) == []
    for name in ("v1_0.json", "v1_4.json", "v1_6.json"):
        assert validate_file(FIXTURES / name) == [], name


def set_(path: str, value: object) -> Callable[[dict], None]:
    """Mutator setting a dotted path (ints index lists) to ``value``."""
    def apply(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    return apply


def delete(path: str) -> Callable[[dict], None]:
    def apply(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    return apply


CASES = [
    # required fields and types
    (delete("agent"), "$.agent", "required"),
    (delete("steps.2.message"), "$.steps[2].message", "required"),
    (set_("agent.name", None), "$.agent.name", "required"),
    (set_("steps.0.step_id", "1"), "$.steps[0].step_id", "type"),
    (set_("steps.2.tool_calls.0.arguments", '{"cmd": "ls"}'), "$.steps[2].tool_calls[0].arguments", "type"),
    (set_("steps.2.metrics.prompt_tokens", 1.5), "$.steps[2].metrics.prompt_tokens", "type"),
    (set_("steps.2.metrics.logprobs", [-0.1, "x"]), "$.steps[2].metrics.logprobs", "type"),
    (set_("steps.1.is_copied_context", "yes"), "$.steps[1].is_copied_context", "type"),
    (set_("steps.2", "not a step"), "$.steps[2]", "type"),
    (set_("steps.0.surprise", 1), "$.steps[0].surprise", "unknown-field"),
    (set_("agent.odd key", 1), "$.agent['odd key']", "unknown-field"),
    (set_("steps", []), "$.steps", "min-length"),
    (set_("steps.1.source", "tool"), "$.steps[1].source", "enum"),
    # step ids
    (set_("steps.1.step_id", 3), "$.steps[1].step_id", "step-id"),
    # observations answer the step's own tool calls
    (set_("steps.2.observation.results.1.source_call_id", "c9"), "$.steps[2].observation.results[1].source_call_id", "source-call-id"),
    # agent-only fields
    (set_("steps.1.model_name", "m"), "$.steps[1].model_name", "agent-only"),
    (set_("steps.0.reasoning_content", "r"), "$.steps[0].reasoning_content", "agent-only"),
    (set_("steps.1.tool_calls", []), "$.steps[1].tool_calls", "agent-only"),
    (set_("steps.0.metrics", {}), "$.steps[0].metrics", "agent-only"),
    (set_("steps.1.reasoning_effort", "low"), "$.steps[1].reasoning_effort", "agent-only"),
    # llm_call_count == 0
    (set_("steps.2.llm_call_count", 0), "$.steps[2].metrics", "llm-call-count"),
    (set_("steps.2.llm_call_count", -1), "$.steps[2].llm_call_count", "range"),
    # duplicate tool call ids
    (set_("steps.2.tool_calls.1.tool_call_id", "c1"), "$.steps[2].tool_calls[1].tool_call_id", "duplicate-tool-call-id"),
    # timestamps
    (set_("steps.1.timestamp", "01/02/2025 10:00"), "$.steps[1].timestamp", "timestamp"),
    # metrics sanity
    (set_("steps.2.metrics.cached_tokens", 11), "$.steps[2].metrics.cached_tokens", "metrics"),
    (set_("final_metrics.total_steps", -3), "$.final_metrics.total_steps", "range"),
    # content parts
    (set_("steps.1.message", [{"type": "text"}]), "$.steps[1].message[0].text", "content-part"),
    (set_("steps.1.message", [{"type": "image", "text": "x", "source": {"media_type": "image/png", "path": "p"}}]), "$.steps[1].message[0].text", "content-part"),
    (set_("steps.1.message", [{"type": "image"}]), "$.steps[1].message[0].source", "content-part"),
    (set_("steps.1.message", [{"type": "image", "source": {"media_type": "image/tiff", "path": "p"}}]), "$.steps[1].message[0].source.media_type", "enum"),
    (set_("steps.1.message", [{"type": "video", "source": {}}]), "$.steps[1].message[0].type", "enum"),
    (set_("steps.1.message", [{"type": "audio", "source": {"media_type": "audio/wav", "path": "p", "duration_sec": -1}}]), "$.steps[1].message[0].source.duration_sec", "range"),
    # version
    (set_("schema_version", "ATIF-v2.0"), "$.schema_version", "version"),
    (delete("schema_version"), "$.schema_version", "required"),
]


@pytest.mark.parametrize(("mutate", "path", "rule"), CASES)
def test_each_rule_fires_at_its_path(mutate: Callable[[dict], None], path: str, rule: str) -> None:
    data = good()
    mutate(data)
    found = validate_trajectory(data)
    assert (path, rule) in rules(found), found


def test_every_violation_is_reported() -> None:
    data = good()
    data["steps"][0]["model_name"] = "m"
    data["steps"][2]["observation"]["results"][0]["source_call_id"] = "zzz"
    data["steps"][2]["tool_calls"][0]["arguments"] = "text"
    data["agent"]["version"] = 3
    assert rules(validate_trajectory(data)) == [
        ("$.agent.version", "type"),
        ("$.steps[0].model_name", "agent-only"),
        ("$.steps[2].tool_calls[0].arguments", "type"),
        ("$.steps[2].observation.results[0].source_call_id", "source-call-id"),
    ]


def test_unknown_version_still_checks_the_structure() -> None:
    data = good("ATIF-v9.9")
    data["steps"][1]["step_id"] = 7
    assert rules(validate_trajectory(data)) == [("$.schema_version", "version"), ("$.steps[1].step_id", "step-id")]


def test_top_level_must_be_an_object() -> None:
    assert rules(validate_trajectory([1])) == [("$", "type")]


GATES = [
    ("ATIF-v1.0", set_("extra", {}), "$.extra"),
    ("ATIF-v1.1", set_("steps.0.observation", {"results": [{"content": "reset"}]}), "$.steps[0].observation"),
    ("ATIF-v1.2", set_("steps.2.metrics.completion_token_ids", [1, 2]), "$.steps[2].metrics.completion_token_ids"),
    ("ATIF-v1.3", set_("steps.2.metrics.prompt_token_ids", [1, 2]), "$.steps[2].metrics.prompt_token_ids"),
    ("ATIF-v1.4", set_("agent.tool_definitions", [{"type": "function"}]), "$.agent.tool_definitions"),
    ("ATIF-v1.4", set_("steps.1.is_copied_context", True), "$.steps[1].is_copied_context"),
    ("ATIF-v1.5", set_("steps.1.message", [{"type": "text", "text": "t"}]), "$.steps[1].message"),
    ("ATIF-v1.5", set_("steps.2.observation.results.0.content", [{"type": "text", "text": "t"}]), "$.steps[2].observation.results[0].content"),
    ("ATIF-v1.6", set_("steps.2.llm_call_count", 1), "$.steps[2].llm_call_count"),
    ("ATIF-v1.6", set_("trajectory_id", "t"), "$.trajectory_id"),
    ("ATIF-v1.6", set_("steps.2.tool_calls.0.extra", {}), "$.steps[2].tool_calls[0].extra"),
    ("ATIF-v1.6", set_("steps.2.observation.results.0.extra", {}), "$.steps[2].observation.results[0].extra"),
    ("ATIF-v1.6", set_("subagent_trajectories", []), "$.subagent_trajectories"),
    ("ATIF-v1.7", set_("steps.1.message", [{"type": "audio", "source": {"media_type": "audio/mp3", "path": "a.mp3"}}]), "$.steps[1].message[0].type"),
]


@pytest.mark.parametrize(("version", "mutate", "path"), GATES)
def test_fields_newer_than_the_declared_version_are_flagged(version: str, mutate: Callable[[dict], None], path: str) -> None:
    old = good(version)
    mutate(old)
    assert rules(validate_trajectory(old)) == [(path, "version-gate")]
    new = good("ATIF-v1.8")
    mutate(new)
    assert validate_trajectory(new) == []


def test_session_id_required_until_v16() -> None:
    for version, expected in (("ATIF-v1.6", [("$.session_id", "required")]), ("ATIF-v1.7", [])):
        data = good(version)
        del data["session_id"]
        assert rules(validate_trajectory(data)) == expected


def ref_file(version: str, ref: dict, subs: list[dict] | None = None) -> dict:
    data = good(version)
    data["steps"][2]["observation"]["results"][1]["subagent_trajectory_ref"] = [ref]
    if subs is not None:
        data["subagent_trajectories"] = subs
    return data


def sub(trajectory_id: str | None) -> dict:
    data = good()
    del data["session_id"]
    if trajectory_id is not None:
        data["trajectory_id"] = trajectory_id
    return data


REF_PATH = "$.steps[2].observation.results[1].subagent_trajectory_ref[0]"


def test_subagent_reference_rules_depend_on_version() -> None:
    assert validate_trajectory(ref_file("ATIF-v1.6", {"session_id": "x"})) == []
    assert rules(validate_trajectory(ref_file("ATIF-v1.6", {"trajectory_path": "x.json"}))) == [(REF_PATH + ".session_id", "required")]
    assert rules(validate_trajectory(ref_file("ATIF-v1.7", {"session_id": "x"}))) == [(REF_PATH, "subagent")]
    assert validate_trajectory(ref_file("ATIF-v1.7", {"trajectory_path": "x.json"})) == []
    assert validate_trajectory(ref_file("ATIF-v1.8", {"trajectory_id": "s1"}, [sub("s1")])) == []
    assert rules(validate_trajectory(ref_file("ATIF-v1.8", {"trajectory_id": "s2"}, [sub("s1")]))) == [(REF_PATH + ".trajectory_id", "subagent")]


def test_embedded_subagent_rules_and_nested_paths() -> None:
    broken = sub("s1")
    broken["steps"][1]["source"] = "robot"
    data = ref_file("ATIF-v1.8", {"trajectory_id": "s1"}, [sub(None), broken, sub("s1")])
    assert rules(validate_trajectory(data)) == [
        ("$.subagent_trajectories[0].trajectory_id", "subagent"),
        ("$.subagent_trajectories[1].steps[1].source", "enum"),
        ("$.subagent_trajectories[2].trajectory_id", "subagent"),
    ]


def test_embedded_subagent_is_gated_by_its_own_version() -> None:
    old_sub = sub("s1")
    old_sub["schema_version"] = "ATIF-v1.6"
    old_sub["session_id"] = "run"
    assert rules(validate_trajectory(ref_file("ATIF-v1.8", {"trajectory_id": "s1"}, [old_sub]))) == [
        ("$.subagent_trajectories[0].trajectory_id", "version-gate")
    ]


def test_builder_output_is_valid() -> None:
    b = TrajectoryBuilder("agent", "1.0", "m")
    b.add_system("sys")
    b.add_user("task")
    b.add_agent("x", tool_calls=[("a", "f", "oops"), ("a", "f", "{}")], observations=[("a", "1"), ("a", "2"), ("q", "3")])
    b.add_agent("done", llm_call_count=0, tool_calls=[("z", "submit", {})], observations=[("z", "ok")])
    assert validate_trajectory(b.build().to_json_dict()) == []


def test_validate_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        validate_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SourceError, match="invalid JSON"):
        validate_file(bad)


# -- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test app holding only the commands under test."""

    validate_cli.register(app)
    schema_cli.register(app)
    return app


def test_cli_validate_exit_codes_and_output(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(FIXTURES / "v1_4.json")])
    assert ok.exit_code == 0 and "valid ATIF" in ok.stdout
    bad_data = copy.deepcopy(good())
    bad_data["steps"][2]["observation"]["results"][0]["source_call_id"] = "nope"
    bad_data["steps"][1]["step_id"] = 9
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(bad_data))
    table = runner.invoke(cli, ["validate", str(bad)])
    assert table.exit_code == 1
    assert "$.steps[1].step_id" in table.stdout and "source-call-id" in table.stdout
    as_json = runner.invoke(cli, ["validate", str(bad), "--json"])
    assert as_json.exit_code == 1
    assert [v["path"] for v in orjson.loads(as_json.stdout)] == [
        "$.steps[1].step_id", "$.steps[2].observation.results[0].source_call_id"
    ]
    valid_json = runner.invoke(cli, ["validate", str(FIXTURES / "v1_6.json"), "--json"])
    assert valid_json.exit_code == 0 and orjson.loads(valid_json.stdout) == []
    (tmp_path / "broken.json").write_text("{nope")
    for target, code in (("missing.json", 3), ("broken.json", 2)):  # not found; malformed input
        result = runner.invoke(cli, ["validate", str(tmp_path / target)])
        assert result.exit_code == code, result.output
        assert target in result.stderr


def test_cli_schema(cli: typer.Typer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["schema", "atif"])
    assert result.exit_code == 0
    schema = orjson.loads(result.stdout)
    assert schema["title"] == "Trajectory" and "steps" in schema["properties"]
    assert orjson.loads(runner.invoke(cli, ["schema", "atif", "--json"]).stdout) == schema
    listing = runner.invoke(cli, ["schema", "--json"])
    assert "atif" in orjson.loads(listing.stdout)
    unknown = runner.invoke(cli, ["schema", "nope"])
    assert unknown.exit_code == 2 and "unknown schema 'nope'" in unknown.stderr


def test_json_schema_accepts_the_fixtures() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from trialbook.model.schemas import json_schema

    schema = json_schema("atif")
    jsonschema.Draft202012Validator.check_schema(schema)
    for name in ("v1_0.json", "v1_4.json", "v1_6.json"):
        jsonschema.validate(orjson.loads((FIXTURES / name).read_bytes()), schema)
