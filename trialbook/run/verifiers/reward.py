"""The reward verifier of Harbor-format tasks: run ``tests/test.sh`` in the environment, grade what it wrote.

Reading and scoring the reward files is :mod:`trialbook.grading.reward`'s job.
"""

from __future__ import annotations

from trialbook.grading.reward import MAX_REWARD_BYTES, verdict_from_files
from trialbook.layout.paths import TrialPaths
from trialbook.model.outcome import Outcome
from trialbook.model.verdict import Verdict
from trialbook.run.environments.base import Environment


async def run_reward_verifier(paths: TrialPaths, environment: Environment, timeout_s: float) -> Verdict:
    """Run ``bash /tests/test.sh`` (the environment holds the trial's copy of tests/ and an empty
    ``/logs/verifier``); output to test_output.txt; the reward is read from that directory."""
    res = await environment.exec(["bash", "/tests/test.sh"], timeout_s=timeout_s, stdout_path=paths.test_output)
    if res.timed_out:
        return Verdict(outcome=Outcome.TIMEOUT, reason=f"verifier timed out after {timeout_s:g}s",
                       timed_out=True, duration_s=res.duration_s)
    verifier_dir = await environment.reward_dir("/logs/verifier", paths.verifier_dir)
    return verdict_from_files(verifier_dir, res.exit_code, res.duration_s,
                              environment.limits.reward_file or MAX_REWARD_BYTES)
