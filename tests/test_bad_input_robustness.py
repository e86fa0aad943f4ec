"""Hostile or odd input gets a one-line error naming the file and nothing is lost (red-team list)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_block, requires_bwrap, write_task

from trialbook.config import load_config
from trialbook.errors import ConfigError, TaskError
from trialbook.grading.reward import verdict_from_files
from trialbook.model.numbers import mean
from trialbook.run.job import unused_job_name
from trialbook.run.tasks import load_harbor_task

TB = [sys.executable, "-m", "trialbook.cli.main"]


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_mean_of_huge_rewards_does_not_overflow() -> None:
    assert mean([1e308, 1e308, 1e308]) == pytest.approx(1e308)
    assert mean([1e308, -1e308]) == 0.0 and mean([]) is None


def test_reward_txt_takes_ascii_numbers_only(tmp_path: Path) -> None:
    for text, reason in (("١", "does not hold a number"), ("nan", "does not hold a number"),
                         ("1e999", "must be finite"), (" 0.5 \n", None)):
        (tmp_path / "reward.txt").write_text(text, encoding="utf-8")
        verdict = verdict_from_files(tmp_path, 0, 0.1)
        if reason is None:
            assert verdict.reward == 0.5
        else:
            assert verdict.outcome == "verifier_error" and reason in (verdict.reason or "")
    (tmp_path / "reward.txt").write_bytes(b"1" * (2 * 1024 * 1024))
    assert "larger than" in (verdict_from_files(tmp_path, 0, 0.1).reason or "")


def test_yaml_alias_bomb_and_absurd_attempts_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "config.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\nkind: eval\n")
    with pytest.raises(ConfigError) as err:
        load_config(bomb)
    assert "alias bomb" in one_line(err.value) and str(bomb) in str(err.value)
    huge = tmp_path / "huge.yaml"
    huge.write_text("kind: eval\ntasks: {path: .}\nvariants: [{name: a, agent: nop}]\nattempts: 100000000\n")
    with pytest.raises(ConfigError) as err:
        load_config(huge)
    assert "line 4: attempts: Input should be less than or equal to 10000" in one_line(err.value)


def test_bad_task_names_and_timeouts(tmp_path: Path) -> None:
    task = write_task(tmp_path, "nan-timeout", test_sh="true\n", toml='version = "1.0"\n[agent]\ntimeout_sec = nan\n')
    with pytest.raises(TaskError) as err:
        load_harbor_task(task)
    assert "timeout_sec must be a positive number, got nan" in one_line(err.value)
    bad = os.fsencode(tmp_path) + b"/bad-\xff-name"
    os.mkdir(bad)
    with pytest.raises(TaskError) as err:
        load_harbor_task(Path(os.fsdecode(bad)))
    assert "is not valid UTF-8; rename it" in one_line(err.value)


def test_job_names_never_repeat_within_a_second(tmp_path: Path) -> None:
    from datetime import datetime

    now = datetime(2026, 12, 5, 9, 17, 38)
    names = [unused_job_name(tmp_path, now) for _ in range(3)]
    assert names == ["2026-12-05__09-17-38", "2026-12-05__09-17-38-2", "2026-12-05__09-17-38-3"]


@requires_bwrap
def test_late_errors_stop_the_job_before_it_starts(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"],
                      environment={"ro_binds": [str(tmp_path / "missing")], "env": {"A": "${TRIALBOOK_UNSET_1}"}},
                      variants=[{"name": "v", "agent": "nop", "env": {"B": "${TRIALBOOK_UNSET_2}"}}])
    res = subprocess.run([*TB, "run", "--job", "j"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 2
    message = " ".join(res.stderr.split())
    assert f"environment.ro_binds: {tmp_path / 'missing'} does not exist" in message
    assert "environment.env.A: environment variable TRIALBOOK_UNSET_1 is not set" in message
    assert "variant v: env.B: environment variable TRIALBOOK_UNSET_2 is not set" in message
    assert not list((root / "artifacts" / "jobs").glob("*/*/trial.json"))


@requires_bwrap
def test_long_instruction_and_config_mode_survive_a_run(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    long_text = "Write ok to /app/out.txt. " + "x" * 200_000
    write_task(extra, "long", instruction=long_text,
               test_sh="grep -q ok /app/out.txt && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt\n")
    root = make_block(tmp_path, extra_tasks_dir=extra, variants=[{
        "name": "c", "agent": "command",
        "command": 'test -z "$TRIALBOOK_INSTRUCTION" && test "$TRIALBOOK_INSTRUCTION_IN_FILE_ONLY" = 1 && '
                   'grep -q "Write ok" "$TRIALBOOK_INSTRUCTION_FILE" && echo ok > /app/out.txt'}])
    (root / "config.yaml").chmod(0o600)
    res = subprocess.run([*TB, "run", "--job", "j", "--json"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["results"]["outcomes"] == {"resolved": 1}
    assert (root / "config.yaml").stat().st_mode & 0o777 == 0o600


def test_summary_of_huge_rewards_renders(tmp_path: Path) -> None:
    from trialbook.model.outcome import Outcome
    from trialbook.results.summary import JobInfo, TrialFacts, build_summary, write_summary

    facts = [TrialFacts(trial_name=f"t{i}", task="t", variant="v", agent="a", model=None, attempt=i,
                        outcome=Outcome.RESOLVED, reward=1e308) for i in (1, 2)]
    summary = build_summary(JobInfo(job="j", job_dir=None, layout="native"), facts)
    assert summary["variants"][0]["mean_reward"] == pytest.approx(1e308)
    json_path, md_path = write_summary(summary, tmp_path)
    assert "1e+308" in md_path.read_text() and json.loads(json_path.read_text())["n_trials"] == 2


def test_trees_with_non_utf8_names_are_read_with_a_warning(tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "native-job"
    shutil.copytree(Path(__file__).parent / "fixtures" / "native" / "jobs" / "native-job", job)
    first = sorted(p for p in job.iterdir() if (p / "trial.json").is_file())[0]
    os.rename(os.fsencode(first), os.fsencode(job) + b"/bad-\xff-trial")
    shown = subprocess.run([*TB, "show", str(job), "--json", "--no-write"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "name is not valid UTF-8; skipped" in shown.stderr
    indexed = subprocess.run([*TB, "reindex", str(job), "--db", str(tmp_path / "x.db"), "--json"],
                             capture_output=True, text=True)
    assert indexed.returncode == 0, indexed.stderr


def test_deeply_nested_json_in_a_trial_is_read(tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "native-job"
    shutil.copytree(Path(__file__).parent / "fixtures" / "native" / "jobs" / "native-job", job)
    trial = sorted(p for p in job.iterdir() if (p / "trial.json").is_file())[0] / "trial.json"
    data = json.loads(trial.read_text())
    data["extra"] = {"deep": "NESTED"}  # 1,000 levels: more than Python's own json can build
    trial.write_text(json.dumps(data).replace('"NESTED"', "[" * 1000 + "]" * 1000))
    for args in (["show", str(job), "--json", "--no-write"], ["analyze", str(job), "--trial", "1", "--json"]):
        res = subprocess.run([*TB, *args], capture_output=True, text=True)
        assert res.returncode in (0, 2), res.stderr
        assert "Traceback" not in res.stderr


def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_reader_refuses_bombs_and_deep_nesting_but_not_big_files(tmp_path: Path) -> None:
    from trialbook.yamlio import load_yaml, read_yaml

    for text, problem in ((_alias_bomb(), "alias bomb"), ("a: &a [*a]\n", "alias bomb"),
                          ("x: " + "[" * 1000 + "]" * 1000 + "\n", "nested more than 100 levels"),
                          ("x: " + "[" * 150 + "]" * 150 + "\n", "nested more than 100 levels"),
                          ("a: [\n", "invalid YAML")):
        with pytest.raises(ConfigError) as err:
            load_yaml(text, tmp_path / "f.yaml")
        assert problem in one_line(err.value) and "f.yaml" in str(err.value)
    big = "runs:\n" + "".join(f"- {{number: {i}, job: j{i}}}\n" for i in range(60_000))
    assert len(load_yaml(big)["runs"]) == 60_000  # 180,000 values, no alias: fine
    shared = "base: &b {model: m, temperature: 0}\n" + "".join(f"v{i}: *b\n" for i in range(100))
    assert load_yaml(shared)["v99"] == {"model": "m", "temperature": 0}  # ordinary anchors: fine
    latin1 = tmp_path / "config.yaml"
    latin1.write_bytes(b"kind: eval\nname: caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(latin1)
    assert "not valid UTF-8" in one_line(err.value) and str(latin1) in str(err.value)


def test_every_command_refuses_an_alias_bomb_config_at_once(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"])
    config = root / "config.yaml"
    config.write_text(config.read_text() + _alias_bomb())
    before = config.read_bytes()
    for args in (["status"], ["run", "--job", "j"], ["clean", "--yes"], ["show"], ["reindex"], ["convert"],
                 ["archive"]):
        res = subprocess.run([*TB, *args], cwd=root, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in res.stderr, args
        message = " ".join(res.stderr.split())
        assert f"{config}: YAML aliases expand to more than 100,000 extra values (an alias bomb?)" in message, args
    assert config.read_bytes() == before and (root / "tasks" / "hello-world" / "task.toml").is_file()


def test_markup_in_names_and_reasons_is_printed_as_text(tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "native-job"
    shutil.copytree(Path(__file__).parent / "fixtures" / "native" / "jobs" / "native-job", job)
    trial = sorted(p for p in job.iterdir() if (p / "trial.json").is_file())[0] / "trial.json"
    data = json.loads(trial.read_text())
    data.update(task="t-[/x]", outcome="agent_error", reason="agent wrote [/bold] [red]")
    trial.write_text(json.dumps(data))
    for args in (["show", str(job), "--no-write"], ["analyze-job", str(job), "--out", str(tmp_path / "a")],
                 ["analyze", str(trial.parent)], ["show", str(tmp_path / "[/x]")]):
        res = subprocess.run([*TB, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        assert "Traceback" not in res.stderr, (args, res.stderr[-500:])
        assert "[/x]" in res.stdout + res.stderr, args


def test_env_and_ro_binds_that_would_fail_every_trial_are_config_errors(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from trialbook.config import runtime_problems

    base = "kind: eval\ntasks: {path: .}\nvariants: [{name: a, agent: nop, env: {V: '${TB_BIG}'}}]\n"
    for extra, problem in (("environment: {env: {A=B: x}}", "line 4: environment.env: 'A=B' is not a variable name"),
                           ("environment: {env: {'': x}}", "'' is not a variable name"),
                           ('environment: {env: {A: "x\\0y"}}', "A: the value holds a NUL byte"),
                           ("environment: {ro_binds: [data]}", "'data' must be an absolute path"),
                           ("retries: {infra_error: 100000000}", "less than or equal to 100")):
        path = tmp_path / "config.yaml"
        path.write_text(base + extra + "\n")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert problem in one_line(err.value) and "Value error" not in str(err.value), extra
    path.write_text(base + "environment: {env: {" + ", ".join(f"E{i}: {'x' * 60_000}" for i in range(20)) + "}}\n")
    monkeypatch.setenv("TB_BIG", "y" * 70_000)
    problems = runtime_problems(load_config(path))
    assert problems[0] == ("variant a: env.V: the value is 70,000 bytes, over the 64 KiB an environment "
                           "variable may hold (put it in a file under ro_binds)")
    assert problems[1].startswith("env: the values add up to 1,270,000 bytes, over the 1024 KiB")


def test_a_job_snapshot_that_is_not_utf8_is_read(tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "native-job"
    shutil.copytree(Path(__file__).parent / "fixtures" / "native" / "jobs" / "native-job", job)
    (job / "config.yaml").write_bytes(b"name: \xd7\xff broken\n")
    res = subprocess.run([*TB, "show", str(job), "--json", "--no-write"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["n_trials"] > 0
