"""SWE-style instances: loading, bad input at job start, the repository cache, the rendered scripts."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from trialbook.app.swe_demo import EXAMPLE_COMMITS, build_example_repo, example_dir
from trialbook.block.init import init_block
from trialbook.errors import ConfigError, TaskError
from trialbook.jsonio import read_json, write_json
from trialbook.layout.paths import JobPaths
from trialbook.model.trial import TrialRecord
from trialbook.run.scheduler import prepare_job
from trialbook.run.swe.instances import (
    DEFAULT_TEST_CMD,
    load_swe_instances,
    patch_files,
    resolve_repo,
)
from trialbook.run.swe.job_report import SweJobReporter
from trialbook.run.swe.repos import RepoCache, RepoError, repo_slug
from trialbook.run.swe.scripts import eval_script
from trialbook.run.swe.task import SweTask

EXAMPLE_ROWS = [json.loads(line) for line in
                example_dir().joinpath("instances.jsonl").read_text().splitlines() if line.strip()]


def write_rows(path: Path, rows: list[dict], *, as_list: bool = False) -> Path:
    path.write_text(json.dumps(rows, indent=1) if as_list else "".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def example_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("src") / "calc-repo"


@pytest.fixture(scope="module")
def built_repo(example_repo: Path) -> Path:
    build_example_repo(example_repo)
    return example_repo


# ----------------------------------------------------------------------------- loading


def test_example_instances_load_with_defaults_and_json_encoded_lists(tmp_path: Path) -> None:
    f = write_rows(tmp_path / "inst.jsonl", EXAMPLE_ROWS)
    insts = load_swe_instances(f)
    assert [i.instance_id for i in insts] == ["calc__clamp-1", "calc__mean-2", "calc__median-3", "calc__version-4"]
    mean = insts[1]
    assert isinstance(EXAMPLE_ROWS[1]["FAIL_TO_PASS"], str)  # stored JSON-encoded, as SWE-bench does
    assert mean.FAIL_TO_PASS == ["test_mean_empty (tests.test_stats.StatsTest.test_mean_empty)"]
    assert mean.repo == "calc-repo"  # as written; resolved against the instance file's directory by tasks
    assert mean.test_files() == ["tests/test_stats.py"]
    assert mean.test_command() == "python3 -m unittest -v tests/test_stats.py"
    assert mean.extras == {"note": EXAMPLE_ROWS[1]["note"]}
    assert insts[3].patch == "" and insts[3].test_files() == ["tests/test_version.py"]
    bare = {k: v for k, v in EXAMPLE_ROWS[0].items() if k not in ("test_cmd", "log_parser")}
    (one,) = load_swe_instances(write_rows(tmp_path / "one.json", [bare], as_list=True))
    assert (one.test_cmd, one.log_parser) == (DEFAULT_TEST_CMD, "pytest")
    assert one.test_command() == f"{DEFAULT_TEST_CMD} tests/test_ops.py"
    picked = load_swe_instances(f, include=["calc__m*"], exclude=["*-3"])
    assert [i.instance_id for i in picked] == ["calc__mean-2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"log_parser": "nosuch"}, "line 2 (instance 'calc__mean-2'): log_parser: unknown log parser 'nosuch'"),
        ({"FAIL_TO_PASS": None}, "line 2 (instance 'calc__mean-2'): missing field 'FAIL_TO_PASS'"),
        ({"instance_id": "../escape"}, "line 2 (instance '../escape'): unsafe task name '../escape'"),
        ({"instance_id": ".hidden"}, "must not start with '.'"),
        ({"base_commit": "HEAD~1"}, "base_commit: 'HEAD~1' is not a commit id"),
        ({"PASS_TO_PASS": "not json"}, "PASS_TO_PASS: expected a list of test names or a JSON-encoded one"),
        ({"PASS_TO_PASS": [1, 2]}, "PASS_TO_PASS.0: Input should be a valid string"),
        ({"log_parsr": "pytest"}, "unknown key 'log_parsr' (did you mean 'log_parser'?)"),
        ({"problem_statement": "  "}, "problem_statement: must not be empty"),
        ({"instance_id": "calc__clamp-1"}, "line 2 (instance 'calc__clamp-1'): duplicate instance_id"),
    ],
)
def test_bad_rows_name_file_line_and_instance(tmp_path: Path, change: dict, message: str) -> None:
    row = dict(EXAMPLE_ROWS[1])
    for k, v in change.items():
        if v is None:
            del row[k]
        else:
            row[k] = v
    f = write_rows(tmp_path / "inst.jsonl", [EXAMPLE_ROWS[0], row])
    with pytest.raises(TaskError) as err:
        load_swe_instances(f)
    assert str(err.value).startswith(f"{f}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ConfigError)  # a broken instance is also a config error of the job


def test_malformed_lines_non_objects_and_empty_files(tmp_path: Path) -> None:
    f = tmp_path / "inst.jsonl"
    f.write_text(json.dumps(EXAMPLE_ROWS[0]) + "\n\n{\"instance_id\": \"x\",\n")
    with pytest.raises(TaskError, match=r"line 3: invalid JSON: .*column"):
        load_swe_instances(f)
    f.write_text(json.dumps(EXAMPLE_ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(TaskError, match="line 2: expected a JSON object, got list"):
        load_swe_instances(f)
    f.write_text("[\n" + json.dumps(EXAMPLE_ROWS[0]) + ",\n 42\n]")
    with pytest.raises(TaskError, match="item 2: expected a JSON object, got int"):
        load_swe_instances(f)
    f.write_text("[\n {\"a\": 1,}\n]")
    with pytest.raises(TaskError, match="line 2: invalid JSON"):
        load_swe_instances(f)
    f.write_text("\n\n")
    with pytest.raises(TaskError, match="holds no instances"):
        load_swe_instances(f)
    with pytest.raises(TaskError, match="instance file not found"):
        load_swe_instances(tmp_path / "missing.jsonl")
    f.write_text(json.dumps(EXAMPLE_ROWS[0]) + "\n")
    with pytest.raises(TaskError, match="no instance matches"):
        load_swe_instances(f, include=["nothing*"])
    row = {k: v for k, v in EXAMPLE_ROWS[0].items() if k != "patch"}
    write_rows(f, [row])
    assert load_swe_instances(f)[0].patch is None
    with pytest.raises(TaskError, match="missing field 'patch' \\(the gold patch the oracle applies\\)"):
        load_swe_instances(f, need_gold_patch=True)


def _swe_block(tmp_path: Path, rows: list[dict], **overrides) -> Path:
    root = tmp_path / "block"
    root.mkdir(parents=True)
    write_rows(root / "instances.jsonl", rows)
    config = {"kind": "eval", "tasks": {"instances": "instances.jsonl"},
              "variants": [{"name": "oracle", "agent": "oracle"}], "attempts": 1, **overrides}
    init_block(root, "eval", config_text=yaml.safe_dump(config))
    return root


def test_bad_instance_stops_the_job_at_start(tmp_path: Path) -> None:
    bad = dict(EXAMPLE_ROWS[2], log_parser="jest_magic")
    root = _swe_block(tmp_path, [EXAMPLE_ROWS[0], bad])
    with pytest.raises(ConfigError, match=r"instances.jsonl: line 2 \(instance 'calc__median-3'\): .*unknown log parser"):
        prepare_job(root / "config.yaml", "j")
    assert not (root / "artifacts" / "jobs" / "j").exists()
    root2 = _swe_block(tmp_path / "b", [EXAMPLE_ROWS[0]], tasks={"instances": "instances.jsonl", "path": "t"})
    with pytest.raises(ConfigError, match="either `path` or `instances`"):
        prepare_job(root2 / "config.yaml", "j")


def test_tasks_from_instances_carry_metadata_and_benchmark_type(tmp_path: Path) -> None:
    root = _swe_block(tmp_path, EXAMPLE_ROWS, tasks={"instances": "instances.jsonl",
                                                      "dataset_name": "princeton-nlp/swe_lite_dev"})
    setup = prepare_job(root / "config.yaml", "j")
    tasks = [p.task for p in setup.plans]
    assert all(isinstance(t, SweTask) and t.grading == "swe" for t in tasks)
    t = tasks[0]
    assert t.name == "calc__clamp-1" and t.instruction.startswith("`calc.ops.clamp")
    assert t.metadata["benchmark_type"] == "Lite" and t.metadata["base_commit"] == EXAMPLE_COMMITS[0]
    assert t.metadata["note"] == EXAMPLE_ROWS[0]["note"]
    assert t.repo_url == t.metadata["repo"] == str((root / "calc-repo").resolve())
    sol = t.solution_dir
    assert sol is not None and (sol / "gold.patch").read_text() == EXAMPLE_ROWS[0]["patch"]
    assert "git -c safe.directory='*' apply --verbose /solution/gold.patch" in (sol / "solve.sh").read_text()
    assert len(t.content_hash()) == 64 and t.content_hash() != tasks[1].content_hash()
    assert isinstance(setup.aggregate_extra, SweJobReporter)
    default_name = _swe_block(tmp_path / "c", EXAMPLE_ROWS)
    t2 = prepare_job(default_name / "config.yaml", "j").plans[0].task
    assert (t2.metadata["dataset_name"], t2.metadata["benchmark_type"]) == ("instances.jsonl", "SWE-hard")
    assert t2.content_hash() == t.content_hash()  # same row elsewhere: same hash


def test_patch_files_and_repo_addresses(tmp_path: Path) -> None:
    test_patch = EXAMPLE_ROWS[3]["test_patch"] + EXAMPLE_ROWS[0]["test_patch"]
    assert patch_files(test_patch) == ["tests/test_version.py", "tests/test_ops.py"]
    deleting = "diff --git a/tests/old.py b/tests/old.py\ndeleted file mode 100644\n--- a/tests/old.py\n+++ /dev/null\n"
    assert patch_files(deleting + test_patch) == ["tests/old.py", "tests/test_version.py", "tests/test_ops.py"]
    assert patch_files(deleting + test_patch, after_only=True) == ["tests/test_version.py", "tests/test_ops.py"]
    (tmp_path / "here").mkdir()
    assert resolve_repo("https://example.com/a/b.git", tmp_path) == "https://example.com/a/b.git"
    assert resolve_repo("git@github.com:a/b.git", tmp_path) == "git@github.com:a/b.git"
    assert resolve_repo("django/django", tmp_path) == "https://github.com/django/django.git"
    assert resolve_repo("here", tmp_path) == str((tmp_path / "here").resolve())
    assert resolve_repo("missing/dir/x", tmp_path) == str(tmp_path / "missing/dir/x")
    assert repo_slug("https://github.com/django/django.git").startswith("django__django-")
    assert repo_slug("/a/calc") != repo_slug("/b/calc")


# ------------------------------------------------------------------------- repositories


def test_example_repo_is_deterministic(built_repo: Path, tmp_path: Path) -> None:
    assert build_example_repo(tmp_path / "again") == list(EXAMPLE_COMMITS)
    with pytest.raises(ConfigError, match="already exists"):
        build_example_repo(tmp_path / "again")
    log = subprocess.run(["git", "-C", str(built_repo), "log", "--format=%H"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert log == list(reversed(EXAMPLE_COMMITS))


def test_checkout_holds_only_history_up_to_base(built_repo: Path, tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "repos")
    app = tmp_path / "app"
    app.mkdir()
    sha = cache.checkout(str(built_repo), EXAMPLE_COMMITS[0][:10], app)
    assert sha == EXAMPLE_COMMITS[0]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(app), *args], capture_output=True, text=True, check=True).stdout

    assert git("rev-parse", "HEAD").strip() == sha
    assert git("log", "--all", "--format=%H").split() == [sha]  # the later commit is not reachable
    assert subprocess.run(["git", "-C", str(app), "cat-file", "-e", EXAMPLE_COMMITS[1]]).returncode != 0
    assert git("status", "--porcelain") == "" and not (app / "calc" / "stats.py").exists()
    assert git("config", "user.name").strip() == "trialbook"
    assert not (app / ".git" / "FETCH_HEAD").exists()
    assert [p.name for p in (tmp_path / "repos").iterdir() if not p.name.startswith(".")] == [
        repo_slug(str(built_repo))]
    with pytest.raises(RepoError, match="cannot fetch commit 1234567 of .*calc-repo: fatal: couldn't find remote ref"):
        cache.ensure(str(built_repo), "1234567")


def test_clone_happens_once_under_concurrency_and_failures_say_why(built_repo: Path, tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "repos")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            cache.checkout(str(built_repo), EXAMPLE_COMMITS[i % 2], tmp_path / f"app{i}")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len([p for p in (tmp_path / "repos").iterdir() if not p.name.startswith(".")]) == 1
    assert (tmp_path / "app5" / "calc" / "stats.py").exists() and not (tmp_path / "app4" / "calc" / "stats.py").exists()
    with pytest.raises(RepoError, match=r"cannot clone /nonexistent/calc: fatal: .*"):
        cache.checkout("/nonexistent/calc", EXAMPLE_COMMITS[0], tmp_path / "x")
    assert not [p for p in (tmp_path / "repos").iterdir() if ".tmp-" in p.name]  # no half clone left


# ----------------------------------------------------------------------------- scripts


def test_eval_script_restores_and_removes_test_files_and_quotes_the_heredoc(tmp_path: Path) -> None:
    row = dict(EXAMPLE_ROWS[0])
    row["test_patch"] = EXAMPLE_ROWS[0]["test_patch"] + EXAMPLE_ROWS[3]["test_patch"] + "EOF_TRIALBOOK_TEST_PATCH_0\n"
    (inst,) = load_swe_instances(write_rows(tmp_path / "i.jsonl", [row]))
    text = eval_script(inst, EXAMPLE_COMMITS[0])
    assert f"checkout -q {EXAMPLE_COMMITS[0]} -- tests/test_ops.py\n" in text
    assert "rm -rf -- tests/test_version.py\n" in text
    assert "<<'EOF_TRIALBOOK_TEST_PATCH_1'" in text  # the _0 tag occurs in the patch itself
    assert text.index(">>>>> Start Test Output") < text.index("python3 -m unittest -v tests/test_ops.py "
                                                              "tests/test_version.py")
    assert 'echo ">>>>> Test Exit Code: $rc"' in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)  # valid shell


# -------------------------------------------------------------------------- job report


def test_job_reporter_one_report_per_variant_and_attempt(tmp_path: Path) -> None:
    """Several runs: report.json is (first variant, attempt 1); each run has its own; figures per run."""
    job = JobPaths(tmp_path / "job")
    ids = ["a-1", "b-2", "c-3"]

    def rec(task: str, variant: str, attempt: int, outcome: str | None, report: dict | None) -> TrialRecord:
        name = f"{task}__{variant}__{attempt}"
        if report is not None:
            write_json(job.trial(name).swe_report, {task: report})
        return TrialRecord(trial_name=name, job="job", task=task, variant=variant, agent="x", attempt=attempt,
                           outcome=outcome, finished_at="t")

    ok = {"patch_is_None": False, "patch_exists": True, "patch_successfully_applied": True, "resolved": True}
    bad = dict(ok, resolved=False)
    empty = {"patch_is_None": False, "patch_exists": False, "patch_successfully_applied": False, "resolved": False}
    reporter = SweJobReporter(job, ids, ["v", "w"], attempts=2, dataset_name="x/swe_lite")
    records = [
        rec("a-1", "v", 1, "resolved", ok), rec("b-2", "v", 1, "unresolved", empty),
        rec("c-3", "v", 1, "timeout", None),
        rec("a-1", "v", 2, "unresolved", bad), rec("b-2", "v", 2, "cancelled", None),
        rec("a-1", "w", 1, "infra_error", None),
    ]
    extra = reporter(records)
    assert extra["benchmark_type"] == "Lite" and extra["dataset_name"] == "x/swe_lite"
    v1, v2, w1, w2 = (extra["swebench"][v][a] for v, a in (("v", "1"), ("v", "2"), ("w", "1"), ("w", "2")))
    assert (v1["resolved_ids"], v1["empty_patch_ids"], v1["error_ids"]) == (["a-1"], ["b-2"], ["c-3"])
    assert v1["report"] == "reports/v/attempt_1/report.json"
    assert (v2["unresolved_ids"], v2["submitted_ids"], v2["incomplete_ids"]) == (["a-1"], ["a-1"], ["b-2", "c-3"])
    assert (w1["error_ids"], w1["completed_instances"]) == (["a-1"], 0)
    assert w2["submitted_instances"] == 0 and w2["total_instances"] == 3
    assert read_json(job.swe_report) == {"a-1": ok, "b-2": empty}
    assert read_json(job.swe_run_report("v", 1)) == read_json(job.swe_report)
    assert read_json(job.swe_run_report("v", 2)) == {"a-1": bad}
    assert read_json(job.swe_run_report("w", 2)) == {}
    # a re-run trial (new finished_at) is read again
    records[0] = rec("a-1", "v", 1, "unresolved", bad).model_copy(update={"finished_at": "t2"})
    assert reporter(records)["swebench"]["v"]["1"]["unresolved_ids"] == ["a-1"]
    assert read_json(job.swe_report)["a-1"] == bad
