"""The per-phase mounts against a hostile solution and hostile tests, as root and as an unprivileged user.

``test_sandbox_attacks`` attacks from the agent phase; here the oracle's ``solve.sh`` attacks
``/solution`` (the only phase it is mounted in) and the host's own file names in
``/logs/agent``, and ``test.sh`` attacks ``/tests``, ``/solution`` and ``/logs/agent`` during the
verifier, and hands the runner reward files that are FIFOs or too large. The dataset is
visible to the sandbox here (it is an ``environment.ro_binds`` path), so every write to it
really reaches a read-only mount, and for the unprivileged run its files are even owned by the
sandbox's own user.
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

SOLVE = r"""
set +e
mount -o remount,bind,rw /solution 2>/dev/null
echo pwned > /solution/solve.sh 2>/dev/null && touch /logs/agent/solution-written
mount -o remount,bind,rw "$DATASET" 2>/dev/null
echo pwned > "$DATASET/phase-attack/solution/solve.sh" 2>/dev/null && touch /logs/agent/dataset-written
echo pwned > "$DATASET/phase-attack/tests/test.sh" 2>/dev/null && touch /logs/agent/dataset-written
# a nested user namespace holds capabilities over its own namespaces only: inherited mounts stay locked
unshare -Urm sh -c 'mount -o remount,bind,rw /etc && touch "/etc/pwned-$MARK"' 2>/dev/null
unshare -Urm sh -c 'mount -o remount,bind,rw "$DATASET" && echo pwned > "$DATASET/phase-attack/tests/test.sh"' 2>/dev/null
test -e /tests && touch /logs/agent/tests-visible
test -e /logs/verifier && touch /logs/agent/verifier-visible
# the host's own file names in /logs/agent: a FIFO, links to a host secret and to /dev/zero
mkfifo /logs/agent/stdout.txt
ln -s "$SECRET" /logs/agent/stderr.txt
ln -s /dev/zero /logs/agent/trajectory.json
ln -s "$SECRET" /logs/agent/reward.txt
echo solved > /app/solved.txt
echo solve-ran
"""

TEST = r"""
set +e
mount -o remount,bind,rw /tests 2>/dev/null
echo pwned > /tests/test.sh 2>/dev/null && touch /logs/verifier/tests-written
echo pwned > "$DATASET/phase-attack/tests/test.sh" 2>/dev/null && touch /logs/verifier/dataset-written
test -e /solution && touch /logs/verifier/solution-visible
touch /logs/agent/written-by-verifier 2>/dev/null && touch /logs/verifier/agent-logs-writable
grep -E '^CapEff' /proc/self/status > /logs/verifier/caps.txt
test -f /app/solved.txt && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt
"""


def _block(base: Path, secret: Path, marker: str) -> tuple[Path, Path]:
    dataset = base / "dataset"
    write_task(dataset, "phase-attack", test_sh=TEST, solve_sh=SOLVE)
    # reward files the runner must refuse without blocking or reading them whole
    write_task(dataset, "fifo-reward", test_sh="mkfifo /logs/verifier/reward.json\n")
    write_task(dataset, "huge-reward", test_sh="head -c 3000000 /dev/zero | tr '\\0' 1 > /logs/verifier/reward.txt\n")
    write_task(dataset, "zero-reward", test_sh="ln -s /dev/zero /logs/verifier/reward.txt\n")
    root = base / "block"
    root.mkdir()
    config = {
        "kind": "eval", "tasks": {"path": str(dataset)}, "attempts": 1, "concurrency": 2,
        "timeouts": {"environment_setup": 30, "agent": 30, "verifier": 30},
        "environment": {"ro_binds": [str(dataset)]},
        "variants": [{"name": "oracle", "agent": "oracle",
                      "env": {"MARK": marker, "SECRET": str(secret), "DATASET": str(dataset)}}],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "artifacts").mkdir()
    return root, dataset


@pytest.mark.parametrize("unprivileged", [False, True], ids=["as-root", "as-unprivileged-user"])
def test_phase_attacks_fail(unprivileged: bool) -> None:
    if unprivileged and not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    base = shared_tmpdir()
    marker = secrets.token_hex(6)
    try:
        token = f"host-secret-{secrets.token_hex(12)}"
        secret = base / "secret.txt"
        secret.write_text(token + "\n")
        root, dataset = _block(base, secret, marker)
        if unprivileged:
            give(base)
        before = tree_hash(dataset)
        started = time.monotonic()
        res = trialbook(["run", "--job", "j", "--json"], cwd=root, unprivileged=unprivileged)
        assert res.returncode == 0, res.stderr[-3000:]
        assert time.monotonic() - started < 120  # the FIFOs blocked nothing

        assert tree_hash(dataset) == before  # neither phase changed a byte of the dataset
        assert not Path(f"/etc/pwned-{marker}").exists()

        job = root / "artifacts" / "jobs" / "j"
        trial = job / "phase-attack"
        record = json.loads((trial / "trial.json").read_text())
        # the legitimate path still works: the solution solved it, the tests graded it
        assert record["outcome"] == "resolved" and record["reward"] == 1, record
        agent, verifier = trial / "agent", trial / "evaluation" / "verifier"
        # /solution and /tests are read-only copies and stay so, the dataset is never written
        written = [p.name for p in (agent / "solution-written", agent / "dataset-written",
                                    verifier / "tests-written", verifier / "dataset-written") if p.exists()]
        assert written == []
        # phase mounts: no /tests nor /logs/verifier for the agent, no /solution for the verifier,
        # /logs/agent read-only for the verifier
        assert not (agent / "tests-visible").exists() and not (agent / "verifier-visible").exists()
        assert not (verifier / "solution-visible").exists()
        assert not (verifier / "agent-logs-writable").exists() and not (agent / "written-by-verifier").exists()
        assert (verifier / "caps.txt").read_text() == "CapEff:\t0000000000000000\n"
        # the host's own files are the host's: the FIFO and links of the same names were not taken
        assert (agent / "stdout.txt").read_text().strip().endswith("solve-ran")
        for name in ("stdout.txt", "stderr.txt", "trajectory.json"):
            assert not (agent / name).is_symlink() and (agent / name).stat().st_size < 1_000_000
        notes = "\n".join(record["extra"]["sandbox_notes"])
        for expected in ("stdout.txt: not kept", "stderr.txt: not kept", "trajectory.json: not kept",
                         "reward.txt: symbolic link, not followed"):
            assert expected in notes, notes
        assert not (agent / "reward.txt").exists()

        reasons = {name: json.loads((job / name / "trial.json").read_text())
                   for name in ("fifo-reward", "huge-reward", "zero-reward")}
        assert all(r["outcome"] == "verifier_error" for r in reasons.values()), reasons
        assert "not a regular file" in reasons["fifo-reward"]["reason"]
        assert "larger than 1048576 bytes" in reasons["huge-reward"]["reason"]
        assert "symbolic link" in reasons["zero-reward"]["reason"]
        # the refused FIFO and link are noted, never copied into the trial directory
        assert not (job / "fifo-reward" / "evaluation" / "verifier" / "reward.json").exists()
        assert not (job / "zero-reward" / "evaluation" / "verifier" / "reward.txt").exists()

        leaked = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                  and token.encode() in p.read_bytes()]
        assert leaked == [] and token not in res.stdout + res.stderr
    finally:
        Path(f"/etc/pwned-{marker}").unlink(missing_ok=True)
        remove(base)
