"""The CLI as a user runs it: init, demo, run, status, --json, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import requires_bwrap


def tb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_init_json_and_status(tmp_path: Path) -> None:
    res = tb("init", str(tmp_path / "b"), "--kind", "trajgen", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert "config.yaml" in data["files"] and "scripts/convert_trajectories.sh" in data["files"]
    assert "tasks/hello-world/tests/test.sh" in data["files"]  # an example task to copy
    assert "agent: mini-swe-agent" in (tmp_path / "b" / "config.yaml").read_text()
    assert tb("check", cwd=tmp_path / "b").returncode == 0  # the example passes its own check
    existing = tmp_path / "mine"
    (existing / "tasks").mkdir(parents=True)
    assert tb("init", str(existing), "--json").returncode == 0
    assert list((existing / "tasks").iterdir()) == []  # an existing dataset is never touched
    st = tb("status", "--json", cwd=tmp_path / "b")
    assert json.loads(st.stdout)["state"] == "never_run"


def test_bad_config_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("kind: eval\ntasks: {path: nowhere}\nvariants: [{name: a, agent: oracle}]\n")
    res = tb("run", "-c", str(tmp_path / "config.yaml"))
    assert res.returncode == 3  # not found
    assert res.stderr.strip().count("\n") == 0 and "task dataset directory not found" in res.stderr
    (tmp_path / "config.yaml").write_text("kind: eval\ntasks: {path: .}\nvariants: [{name: a, agent: gpt-9}]\n")
    res = tb("run", "-c", str(tmp_path / "config.yaml"))
    assert res.returncode == 2 and "unknown agent 'gpt-9'" in res.stderr
    assert tb("status", cwd=tmp_path).returncode == 3  # no block here


@requires_bwrap
def test_demo_command_runs_real_job(tmp_path: Path) -> None:
    res = tb("demo", str(tmp_path / "demo"), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["results"]["outcomes"] == {"resolved": 12, "unresolved": 12, "verifier_error": 6}
    assert "results.json" in data["outputs"] and "config.yaml" in data["outputs"]
    job = tmp_path / "demo" / "artifacts" / "jobs" / "demo"
    summary = json.loads((job / "summary.json").read_text())
    assert summary["analysis_dir"] == str(job / "analysis")  # the summary says where the analysis is
    assert (job / "analysis" / "report_failed.json").is_file()
    assert "job analysis:" in tb("show", "--block", str(tmp_path / "demo"), "--last", "--no-write").stdout
    human = tb("status", "--block", str(tmp_path / "demo"))
    assert "completed" in human.stdout
    again = tb("run", "-c", str(tmp_path / "demo" / "config.yaml"), "--job", "demo", "--json")
    assert json.loads(again.stdout)["skipped"] == 30


@requires_bwrap
def test_demo_explains_its_deliberate_failures(tmp_path: Path) -> None:
    res = tb("demo", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "Deliberate failures in this demo:" in text
    assert "task broken-verifier: its test writes no reward file, on purpose" in text
    assert "verifier_error in 6 trials (as intended)" in text
    assert "variant nop: an agent that does nothing" in text and "unresolved in 12 trials (as intended)" in text
    swe = tb("demo", str(tmp_path / "swe"), "--swe")
    assert swe.returncode == 0, swe.stderr
    text = " ".join(swe.stdout.split())
    assert "task calc__median-3: its gold patch fixes one of two failing tests, on purpose: resolution PARTIAL." in text
    assert "NOT as intended" not in text and text.count("(as intended)") == 4


def test_short_help_flag_and_json_errors_with_distinct_exit_codes(tmp_path: Path) -> None:
    assert tb("-h").returncode == 0 and "Usage" in tb("-h").stdout
    helped = tb("status", "-h")
    assert helped.returncode == 0 and "--block" in helped.stdout
    missing = tb("status", "--json", cwd=tmp_path)
    assert missing.returncode == 3 and missing.stdout == ""
    err = json.loads(missing.stderr)
    assert err["exit_code"] == 3 and "not inside a trialbook block" in err["error"]
    (tmp_path / "config.yaml").write_text("kind: eval\ntasks: {path: .}\nvariants: [{name: a, agent: gpt-9}]\n")
    bad = tb("run", "-c", str(tmp_path / "config.yaml"), "--json")
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"].count("unknown agent 'gpt-9'") == 1
    plain = tb("status", cwd=tmp_path / "..")
    assert plain.stderr.startswith("error: ") and plain.stderr.count("\n") == 1


def test_every_help_has_examples_and_flags_show_no_type() -> None:
    import typer.main

    from trialbook.cli.main import app

    commands = typer.main.get_command(app).commands
    assert set(commands) >= {"run", "show", "sql", "archive"}
    assert not [name for name, cmd in commands.items() if not (cmd.epilog or "").startswith("Examples:")]
    helped = tb("analyze", "--help")
    lines = {line.split()[1]: line for line in helped.stdout.splitlines() if line.startswith("│ --")}
    # flags show no type; options that take a value do (typer writes <int> or INTEGER by version)
    assert "<bool>" not in lines["--json"] and "BOOLEAN" not in lines["--json"]
    assert "<int>" in lines["--steps"] or "INTEGER" in lines["--steps"]
    assert "trialbook analyze --last --trial 1" in helped.stdout


@requires_bwrap
def test_every_command_means_the_same_last_job(tmp_path: Path) -> None:
    from conftest import make_block

    root = make_block(tmp_path, tasks=["hello-world"])
    for job in ("older", "newer", "older"):  # resuming "older" makes it the last job run
        assert tb("run", "--job", job, "--json", cwd=root).returncode == 0
    assert json.loads(tb("show", "--json", "--no-write", cwd=root).stdout)["job"] == "older"
    assert json.loads(tb("show", "--last", "--json", "--no-write", cwd=root).stdout)["job"] == "older"
    assert json.loads(tb("analyze", "--json", cwd=root).stdout)["job"] == "older"
    assert json.loads(tb("analyze-job", "--json", cwd=root).stdout)["job"] == "older"
    assert json.loads(tb("archive", "--json", cwd=root).stdout)["entry"]["job"] == "older"


def test_script_wrappers_say_when_trialbook_is_not_on_path(tmp_path: Path) -> None:
    assert tb("init", str(tmp_path / "b"), "--json").returncode == 0
    assert tb("init", str(tmp_path / "t"), "--kind", "trajgen", "--json").returncode == 0
    for block, script in (("b", "analyze_job.sh"), ("b", "clean.sh"), ("t", "convert_trajectories.sh")):
        res = subprocess.run(["bash", str(tmp_path / block / "scripts" / script)], capture_output=True,
                             text=True, env={"PATH": "/usr/bin:/bin"})
        assert res.returncode == 127
        assert res.stderr.startswith(f"{script}: trialbook is not on PATH: activate the venv "
                                     "(source .venv/bin/activate in trialbook's checkout) or install it"), res.stderr
        assert "not available" not in res.stderr and len(res.stderr.splitlines()) == 1
    works = subprocess.run(["bash", str(tmp_path / "b" / "scripts" / "clean.sh"), "--dry-run"], capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin", "TRIALBOOK": str(Path(sys.executable).parent / "trialbook")})
    assert works.returncode == 0, works.stderr


def test_help_lists_every_command_without_importing_them() -> None:
    """``trialbook --help`` is built from COMMAND_HELP: the same listing as the full app's, and
    no command module imported."""
    import inspect

    import typer.main
    from typer.testing import CliRunner

    from trialbook.cli.main import COMMAND_HELP, COMMANDS, build_app, listing_app

    full = build_app()
    commands = typer.main.get_command(full).commands
    assert set(COMMAND_HELP) == set(COMMANDS) == set(commands)
    for name, command in commands.items():
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert COMMAND_HELP[name] == first, name
    runner = CliRunner()
    env = {"COLUMNS": "120"}
    expected = runner.invoke(full, ["--help"], prog_name="trialbook", env=env)
    listed = runner.invoke(listing_app(), ["--help"], prog_name="trialbook", env=env)
    assert listed.exit_code == expected.exit_code == 0 and listed.output == expected.output
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "trialbook.cli.main", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "schema" in res.stdout and "analyze-job" in res.stdout
    imported = {line.rpartition("|")[2].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported and not {f"trialbook.cli.{m}" for m in COMMANDS.values()} & imported
