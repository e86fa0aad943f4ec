"""The artifact store against a real S3-compatible server (moto's server mode on 127.0.0.1).

A real job (bundled example tasks, oracle and nop agents, the bubblewrap sandbox) uploads every
trial as it finishes; an upload killed halfway (SIGKILL) is completed by the next push without
duplicates or re-uploads; show/reindex from the store give the job's numbers; unsafe keys are
refused; a failed upload never loses a trial; the credentials are written nowhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap
from s3_server import ACCESS_KEY, SECRET_KEY, S3Env, s3_env_fixture, s3_server_fixture  # noqa: F401

from trialbook.app.pipeline import run_block
from trialbook.block.status import read_status
from trialbook.errors import ConfigError, SourceError
from trialbook.store.manifest import MANIFEST_NAME
from trialbook.store.mirror import mirror

pytestmark = requires_bwrap

TASKS = ["hello-world", "count-words"]
VARIANTS = [{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}]


def _set_store(root: Path, url: str | None) -> None:
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["artifacts"] = {"store": url}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _local_trial_files(job_dir: Path) -> dict[str, set[str]]:
    return {t.parent.name: {str(p.relative_to(t.parent)) for p in t.parent.rglob("*") if p.is_file()}
            for t in job_dir.glob("*/trial.json")}


def _store_trial_files(s3: S3Env, root: str, job: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key in s3.objects(f"{root}/{job}"):
        rel = key[len(root) + len(job) + 2:]
        trial, _, path = rel.partition("/")
        if path:
            out.setdefault(trial, set()).add(path)
    return out


def test_run_uploads_every_trial_and_store_reads_back_the_same_numbers(block_factory, s3_env: S3Env,
                                                                       tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    root = block_factory(tasks=TASKS, variants=VARIANTS, attempts=2)
    _set_store(root, f"s3://{bucket}/blocks/demo")
    report = run_block(root / "config.yaml", "j1")
    assert report.step_errors == {}
    step = report.steps["store"]
    assert step["trials"] == 8 and step["trials_in_store"] == 8 and step["failed"] == 0
    job_dir = root / "artifacts" / "jobs" / "j1"
    local = _local_trial_files(job_dir)
    # trials went up as they finished: the post-run step found every trial file there already
    assert step["files_already_there"] >= sum(len(files) for files in local.values())
    stored = _store_trial_files(s3_env, f"{bucket}/blocks/demo", "j1")
    trials = {k: v - {MANIFEST_NAME} for k, v in stored.items() if MANIFEST_NAME in v}
    assert trials == local and len(trials) == 8
    for name in ("config.yaml", "results.json", "summary.json", MANIFEST_NAME):
        assert s3_env.fs().exists(f"{bucket}/blocks/demo/j1/{name}")
    assert s3_env.fs().exists(f"{bucket}/blocks/demo/.archives/run_001/metadata.yaml")
    manifest = json.loads(s3_env.fs().cat_file(f"{bucket}/blocks/demo/j1/hello-world__oracle__1/{MANIFEST_NAME}"))
    assert {f["path"] for f in manifest["files"]} == local["hello-world__oracle__1"]
    assert all(len(f["sha256"]) == 64 and f["size"] >= 0 for f in manifest["files"])
    status = read_status(root / "config.yaml")["store"]
    assert status["url"] == f"s3://{bucket}/blocks/demo" and len(status["trials_in_store"]) == 8
    assert status["failed"] == {}

    # show from the store: the numbers of the local job
    local_show = json.loads(s3_env.cli("show", str(job_dir), "--json", "--no-write", cwd=tmp_path).stdout)
    remote_show = json.loads(s3_env.cli("show", f"s3://{bucket}/blocks/demo/j1", "--json", cwd=tmp_path).stdout)
    for key in ("n_trials", "n_tasks", "n_variants", "failures", "overall_success_rate"):
        assert remote_show[key] == local_show[key], key
    assert [(v["variant"], v["n_success"], v["pass_at_k"]) for v in remote_show["variants"]] == \
        [(v["variant"], v["n_success"], v["pass_at_k"]) for v in local_show["variants"]]
    assert remote_show["n_trials"] == 8

    # reindex the whole prefix from the store, then query it like any index
    out = tmp_path / "elsewhere"
    out.mkdir()
    stats = json.loads(s3_env.cli("reindex", f"s3://{bucket}/blocks/demo", "--db", str(out / "i.db"), "--json",
                                  cwd=out).stdout)
    assert stats["jobs"] == 1 and stats["trials"] == 8
    rows = json.loads(s3_env.cli("sql", "SELECT outcome, count(*) AS n FROM all_trials GROUP BY outcome "
                                 "ORDER BY outcome", "--db", str(out / "i.db"), "--json", cwd=out).stdout)
    local_outcomes = json.loads((job_dir / "results.json").read_text())["outcomes"]
    assert {r["outcome"]: r["n"] for r in rows} == local_outcomes

    # credentials: in no file of the block, the mirror, or the store
    cache = Path(s3_env.env["TRIALBOOK_STORE_CACHE"])
    for tree in (root, cache, out):
        for p in tree.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, p
    fs = s3_env.fs()
    for key in fs.find(bucket):
        data = fs.cat_file(key)
        assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, key


#: ``trialbook ARGS`` that dies by SIGKILL (as a crash or an OOM kill would) right after its N-th
#: object reached the store: python -c KILLED_AFTER N ARGS...
KILLED_AFTER = """
import os, runpy, signal, sys
import trialbook.store.upload as upload
real_call, limit, sent = upload.call, int(sys.argv[1]), []
def call(retries, fn, *args, **kwargs):
    out = real_call(retries, fn, *args, **kwargs)
    if getattr(fn, "__name__", "").lstrip("_") in ("put_file", "pipe_file"):
        sent.append(1)
        if len(sent) >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
    return out
upload.call = call
sys.argv = ["trialbook", *sys.argv[2:]]
runpy.run_module("trialbook.cli.main", run_name="__main__")
"""


def test_push_killed_halfway_is_completed_without_duplicates(block_factory, s3_env: S3Env) -> None:
    bucket = s3_env.new_bucket()
    root = block_factory(tasks=TASKS, variants=VARIANTS, attempts=2)
    report = run_block(root / "config.yaml", "j2")  # no store yet: nothing uploaded during the run
    assert "store" not in report.step_errors and report.steps["store"] == {"skipped": "artifacts.store is not set"}
    url_root = f"{bucket}/p"
    _set_store(root, f"s3://{url_root}")

    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER, "13", "push", "--json"], cwd=root,
                            env={**os.environ, **s3_env.env}, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL
    first = s3_env.objects(url_root)
    assert len(first) == 13  # 13 objects arrived, then the process died
    stored = _store_trial_files(s3_env, url_root, "j2")
    assert any(MANIFEST_NAME not in files for files in stored.values())  # a trial left half uploaded

    done = json.loads(s3_env.cli("push", "--json", cwd=root).stdout)
    assert done["failed"] == 0 and done["trials_in_store"] == 8
    assert done["files_already_there"] >= 13 - sum(1 for k in first if k.endswith(MANIFEST_NAME))
    after = s3_env.objects(url_root)
    for key, (size, etag, modified) in first.items():  # what arrived before the kill was not sent again
        assert after[key] == (size, etag, modified), key
    local = _local_trial_files(root / "artifacts" / "jobs" / "j2")
    trials = {k: v - {MANIFEST_NAME} for k, v in _store_trial_files(s3_env, url_root, "j2").items()
              if MANIFEST_NAME in v}
    assert trials == local
    assert done["uploaded_files"] + done["files_already_there"] == sum(u["files"] for u in done["units"])

    again = json.loads(s3_env.cli("push", "--json", cwd=root).stdout)
    assert again["uploaded_files"] == 0 and again["removed_objects"] == 0
    assert s3_env.objects(url_root) == after
    status = json.loads(s3_env.cli("status", "--json", cwd=root).stdout)["store"]
    assert len(status["trials_in_store"]) == 8 and status["failed"] == {}


def test_failed_upload_keeps_trials_and_is_reported_then_pushed(block_factory, s3_env: S3Env) -> None:
    root = block_factory(tasks=["hello-world"], variants=VARIANTS, attempts=1)
    missing = "tb-no-such-bucket-x1"
    _set_store(root, f"s3://{missing}/p")
    report = run_block(root / "config.yaml", "j3")
    assert report.outcome.status == "completed" and len(report.outcome.records) == 2
    assert "not uploaded" in report.step_errors["store"] and "trialbook push" in report.step_errors["store"]
    assert len(list((root / "artifacts" / "jobs" / "j3").glob("*/trial.json"))) == 2
    status = json.loads(s3_env.cli("status", "--json", cwd=root).stdout)["store"]
    assert set(status["failed"]) >= {"trial:hello-world__oracle__1", "trial:hello-world__nop__1"}
    assert status["trials_in_store"] == []
    failed_push = s3_env.cli("push", cwd=root, check=False)
    assert failed_push.returncode == 5 and "not uploaded" in failed_push.stderr
    assert len(failed_push.stderr.strip().splitlines()) == 1 + failed_push.stderr.count("warning:")

    s3_env.fs().mkdir(missing)
    s3_env.cli("push", cwd=root)
    status = json.loads(s3_env.cli("status", "--json", cwd=root).stdout)["store"]
    assert status["failed"] == {} and len(status["trials_in_store"]) == 2


def test_mirror_downloads_only_what_changed_and_verifies(block_factory, s3_env: S3Env, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    root = block_factory(tasks=["hello-world"], variants=VARIANTS, attempts=1)
    _set_store(root, f"s3://{bucket}/m")
    run_block(root / "config.yaml", "j4")
    cache = tmp_path / "c"
    first = mirror(f"s3://{bucket}/m", cache_root=cache)
    assert first.jobs == ["j4"] and first.trials == 2 and first.downloaded > 0
    second = mirror(f"s3://{bucket}/m", cache_root=cache)
    assert second.downloaded == 0 and second.unchanged == first.downloaded
    local = first.local / "j4" / "hello-world__oracle__1" / "trial.json"
    local.write_text("tampered")
    third = mirror(f"s3://{bucket}/m", cache_root=cache)
    assert third.downloaded == 1 and local.read_bytes() == (
        root / "artifacts/jobs/j4/hello-world__oracle__1/trial.json").read_bytes()
    # the dashboard reads the store the same way
    site = tmp_path / "site"
    built = json.loads(s3_env.cli("dashboard", f"s3://{bucket}/m", "--out", str(site), "--db", str(tmp_path / "d.db"),
                                  "--json", cwd=tmp_path).stdout)
    assert built["jobs"] == 1 and built["trials"] == 2 and (site / "index.html").is_file()
    # any fsspec URL: the same job pushed to a local directory and shown from there
    _set_store(root, f"file://{tmp_path / 'plain-store'}")
    pushed = json.loads(s3_env.cli("push", "j4", "--json", cwd=root).stdout)
    assert pushed["trials_in_store"] == 2 and pushed["failed"] == 0
    assert (tmp_path / "plain-store" / "j4" / "hello-world__oracle__1" / MANIFEST_NAME).is_file()
    shown = json.loads(s3_env.cli("show", f"file://{tmp_path / 'plain-store'}/j4", "--json", cwd=tmp_path).stdout)
    assert shown["n_trials"] == 2 and shown["variants"][0]["n_success"] + shown["variants"][1]["n_success"] == 1
    # an object changed behind the manifest's back is refused, not used
    fs = s3_env.fs()
    key = f"{bucket}/m/j4/hello-world__nop__1/trial.json"
    fs.pipe_file(key, fs.cat_file(key) + b" ")
    fs.rm_file(f"{bucket}/m/j4/hello-world__nop__1/{MANIFEST_NAME}")
    fs.pipe_file(f"{bucket}/m/j4/hello-world__nop__1/{MANIFEST_NAME}",
                 s3_env.fs().cat_file(f"{bucket}/m/j4/hello-world__oracle__1/{MANIFEST_NAME}"))
    with pytest.raises(SourceError, match="does not match its manifest|not in the store"):
        mirror(f"s3://{bucket}/m", cache_root=tmp_path / "c2")


@pytest.mark.parametrize("key, why", [
    ("j/t/../../../escape.txt", "'..'"),
    ("j//t/x", "absolute path|empty"),
])
def test_unsafe_object_keys_are_refused(s3_env: S3Env, tmp_path: Path, key: str, why: str) -> None:
    bucket = s3_env.new_bucket()
    fs = s3_env.fs()
    fs.pipe_file(f"{bucket}/p/j/{MANIFEST_NAME}", json.dumps(
        {"format": "trialbook-store-manifest", "version": 1, "files": []}).encode())
    s3_env_client(s3_env).put_object(Bucket=bucket, Key=f"p/{key}", Body=b"x")
    with pytest.raises(SourceError, match=why) as err:
        mirror(f"s3://{bucket}/p", cache_root=tmp_path / "c")
    assert "\n" not in str(err.value) and "refused" in str(err.value)
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("escape.txt"))


def test_manifest_paths_escaping_the_trial_are_refused(s3_env: S3Env, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    fs = s3_env.fs()
    for bad in ("../../../../outside.txt", "/etc/passwd-copy"):
        fs.pipe_file(f"{bucket}/q/j/t/{MANIFEST_NAME}", json.dumps(
            {"format": "trialbook-store-manifest", "version": 1,
             "files": [{"path": bad, "size": 1, "sha256": "0" * 64}]}).encode())
        with pytest.raises(SourceError, match="refused") as err:
            mirror(f"s3://{bucket}/q/j", cache_root=tmp_path / "c")
        assert "\n" not in str(err.value)
    assert not list(tmp_path.rglob("outside.txt"))


def test_links_in_a_local_store_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "j" / "t").mkdir(parents=True)
    (store / "j" / "t" / MANIFEST_NAME).write_text(json.dumps(
        {"format": "trialbook-store-manifest", "version": 1, "files": []}))
    (tmp_path / "secret.txt").write_text("host file")
    (store / "j" / "t" / "trial.json").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SourceError, match="link"):
        mirror(f"file://{store}/j", cache_root=tmp_path / "c")


def s3_env_client(s3: S3Env):
    import boto3

    return boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


@pytest.mark.parametrize("store, message", [
    ("bucket/prefix", "is not a URL"),
    ("s3:///prefix", "bucket"),
    ("s3://b/a/../c", "'..'"),
    ("file://relative/dir", "absolute path"),
])
def test_bad_store_urls_are_config_errors(block_factory, store: str, message: str) -> None:
    from trialbook.config import load_config

    root = block_factory(tasks=["hello-world"])
    _set_store(root, store)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(root / "config.yaml")
    assert "artifacts.store" in str(err.value) and str(root / "config.yaml") in str(err.value)


def test_credentials_in_store_options_are_refused(block_factory) -> None:
    from trialbook.config import load_config

    root = block_factory(tasks=["hello-world"])
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["artifacts"] = {"store": "s3://b/p", "options": {"secret": "abc"}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="credential"):
        load_config(root / "config.yaml")


def test_a_job_still_uploading_is_read_by_its_complete_trials(tmp_path: Path) -> None:
    from trialbook.store import open_store, push_trial

    job = tmp_path / "job"
    for name in ("t1", "t2"):
        (job / name / "agent").mkdir(parents=True)
        (job / name / "trial.json").write_text(json.dumps({"name": name}))
        (job / name / "agent" / "log.txt").write_text("x" * 100)
    store = open_store(f"file://{tmp_path / 's'}")
    first = push_trial(store, "job", job / "t1")
    assert first.state == "uploaded" and first.uploaded == 2
    assert push_trial(store, "job", job / "t1").state == "present"
    half = tmp_path / "s" / "job" / "t2"  # t2's upload was cut before its manifest
    half.mkdir(parents=True)
    (half / "trial.json").write_text(json.dumps({"name": "t2"}))
    with pytest.warns(UserWarning, match="t2: no manifest yet"):
        result = mirror(f"file://{tmp_path / 's'}/job", cache_root=tmp_path / "c")
    assert result.jobs == ["job"] and result.trials == 1
    assert (result.local / "t1" / "agent" / "log.txt").read_text() == "x" * 100
    assert not (result.local / "t2").exists()
    resumed = push_trial(store, "job", job / "t2")  # the next push completes it, keeping what arrived
    assert resumed.state == "uploaded" and resumed.already == 1 and resumed.uploaded == 1
