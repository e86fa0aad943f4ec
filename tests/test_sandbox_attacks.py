"""A hostile agent and a hostile task against the sandbox, as root and as an unprivileged user.

Each attack of the red-team report is tried for real in one job, and the test checks that it
failed: no host file changed, the dataset untouched, no reward forged, no capability held, no
host secret in any byte trialbook wrote, and the job finished promptly.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap, tree_hash, write_task
from unprivileged import give, remove, running_as_root, shared_tmpdir, trialbook

pytestmark = requires_bwrap

ATTACK = r"""
set +e
mount -o remount,bind,rw /etc 2>/dev/null; touch "/etc/pwned-$MARK" 2>/dev/null
mount -o remount,bind,rw /usr 2>/dev/null; touch "/usr/pwned-$MARK" 2>/dev/null
mount -o remount,bind,rw "$RO" 2>/dev/null; echo 'echo 1 > /logs/verifier/reward.txt' > "$RO/checker.sh" 2>/dev/null
mkdir -p /logs/verifier 2>/dev/null; echo '{"reward": 1}' > /logs/verifier/reward.json 2>/dev/null
echo 'echo 1 > /logs/verifier/reward.txt' > /tests/test.sh 2>/dev/null
echo pwned > "$DATASET/attacked/tests/test.sh" 2>/dev/null
v=$(cat /proc/sys/kernel/core_pattern); echo "$v" > /proc/sys/kernel/core_pattern 2>/dev/null && touch /logs/agent/core-written
cat /etc/shadow > /logs/agent/shadow.txt 2>/dev/null
grep -E '^Cap(Eff|Bnd)' /proc/self/status > /logs/agent/caps.txt
ln -s "$SECRET" /logs/agent/litellm-trajectory.jsonl
ln -s "$SECRET" /logs/agent/leak.txt
ln -s /dev/zero /logs/agent/zero.bin
mkfifo /logs/agent/fifo.txt
echo kept > /logs/agent/notes.txt
exit 0
"""


def _block(base: Path, secret: Path, marker: str) -> tuple[Path, Path, Path]:
    dataset = base / "dataset"
    hello = "test -f /app/hello.txt && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt\n"
    write_task(dataset, "attacked", test_sh=hello)
    # a hostile task: its test tries to rewrite itself and the dataset, then links the reward to a secret
    write_task(dataset, "link-reward", test_sh=(
        "echo pwned > /tests/test.sh 2>/dev/null\n"
        f"ln -s {secret} /logs/verifier/reward.txt\n"))
    ro = base / "shared-checker"
    ro.mkdir()
    (ro / "checker.sh").write_text("echo 0 > /logs/verifier/reward.txt\n")
    root = base / "block"
    root.mkdir()
    config = {
        "kind": "eval", "tasks": {"path": str(dataset)}, "attempts": 1, "concurrency": 2,
        "timeouts": {"environment_setup": 30, "agent": 30, "verifier": 30},
        "environment": {"ro_binds": [str(ro)]},
        "variants": [{"name": "attacker", "agent": "command", "command": ATTACK,
                      "env": {"MARK": marker, "RO": str(ro), "SECRET": str(secret), "DATASET": str(dataset)}}],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "artifacts").mkdir()
    return root, dataset, ro


@pytest.mark.parametrize("unprivileged", [False, True], ids=["as-root", "as-unprivileged-user"])
def test_attacks_fail(unprivileged: bool) -> None:
    if unprivileged and not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    base = shared_tmpdir()
    try:
        token = f"host-secret-{secrets.token_hex(12)}"
        secret = base / "secret.txt"
        secret.write_text(token + "\n")
        marker = secrets.token_hex(6)
        root, dataset, ro = _block(base, secret, marker)
        if unprivileged:
            give(base)
        before = tree_hash(dataset), tree_hash(ro)
        started = time.monotonic()
        res = trialbook(["run", "--job", "j", "--json"], cwd=root, unprivileged=unprivileged)
        assert res.returncode == 0, res.stderr[-3000:]
        assert time.monotonic() - started < 120

        # nothing on the host changed: system dirs, the dataset, the shared read-only checker
        assert not Path(f"/etc/pwned-{marker}").exists() and not Path(f"/usr/pwned-{marker}").exists()
        assert (tree_hash(dataset), tree_hash(ro)) == before

        job = root / "artifacts" / "jobs" / "j"
        attacked = json.loads((job / "attacked" / "trial.json").read_text())
        # the forged reward never reached the verifier: the agent did not solve the task
        assert attacked["outcome"] == "unresolved" and attacked["reward"] == 0
        agent = job / "attacked" / "agent"
        caps = (agent / "caps.txt").read_text()
        assert "CapEff:\t0000000000000000" in caps and "CapBnd:\t0000000000000000" in caps
        assert not (agent / "core-written").exists()  # /proc/sys is not writable
        assert (agent / "shadow.txt").read_text() == ""  # /etc/shadow is not readable
        assert (agent / "notes.txt").read_text() == "kept\n"  # ordinary files are kept
        assert not (agent / "leak.txt").exists() and not (agent / "zero.bin").exists()
        assert not (agent / "fifo.txt").exists()
        notes = "\n".join(attacked["extra"]["sandbox_notes"])
        for expected in ("leak.txt: symbolic link, not followed", "zero.bin: symbolic link, not followed",
                         "fifo.txt: not a regular file", "litellm-trajectory.jsonl: not kept"):
            assert expected in notes

        linked = json.loads((job / "link-reward" / "trial.json").read_text())
        assert linked["outcome"] == "verifier_error" and "symbolic link" in linked["reason"]

        # the host secret is in no byte trialbook wrote (the links were never followed)
        leaked = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                  and token.encode() in p.read_bytes()]
        assert leaked == [] and token not in res.stdout + res.stderr
    finally:
        for mark in ("/etc", "/usr"):
            Path(f"{mark}/pwned-{marker}").unlink(missing_ok=True)
        remove(base)
