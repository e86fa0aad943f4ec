"""The hooks the LiteLLM proxy loads from its config (they run in the proxy's process, not the runner's).

* :func:`user_api_key_auth` is the proxy's ``general_settings.custom_auth``: a request's key
  is valid while the runner's key file for it exists (:mod:`.keys`); the trial it names
  travels with the request in the key's metadata. No database, no LiteLLM virtual keys.
* :data:`gateway_logger` is in ``litellm_settings.callbacks``. Its pre-call hook sends every
  request to the trial's variant (whatever model name the agent asked for) and refuses calls
  over the trial's step or cost budget with HTTP 429; its logging hooks append each call to
  the trial's ``agent/litellm-trajectory.jsonl`` in the line format of
  :mod:`trialbook.run.llm_log`. Anthropic-shaped calls are logged in the chat shape
  (:mod:`.shapes`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from trialbook.run import upstream
from trialbook.run.gateway import shapes
from trialbook.run.gateway.keys import (
    GATEWAY_DIR_ENV,
    KeyRecord,
    TrialState,
    key_id,
    read_record,
    write_state,
)
from trialbook.run.llm_log import META_PATH, META_TRIAL, LiteLLMTrajectoryLogger, TrialLog

_log = logging.getLogger("trialbook.gateway")

#: Metadata key (on the authenticated key) carrying the key's hash to the other hooks.
META_KEY = "trialbook_key"
#: Routes whose requests are model calls (each one ends in a logged line).
_MODEL_ROUTES = ("/chat/completions", "/completions", "/messages", "/responses")


def _keys_dir() -> Path:
    return Path(os.environ[GATEWAY_DIR_ENV]) / "keys"


def _is_trial_route(path: str) -> bool:
    """Routes a trial key may use: model calls, the model listing, token counting."""
    path = path.rstrip("/")
    return _is_model_route(path) or path.endswith("/count_tokens") or path in ("/models", "/v1/models") \
        or path.startswith(("/models/", "/v1/models/"))


def _is_model_route(path: str) -> bool:
    path = path.rstrip("/")
    return any(path.endswith(r) for r in _MODEL_ROUTES) and not path.endswith("/count_tokens")


class _Trial:
    """The proxy's live view of one trial."""

    def __init__(self, key_hash: str, record: KeyRecord, log: TrialLog) -> None:
        self.key_hash, self.record, self.log = key_hash, record, log
        self.state = TrialState()
        self.n_success = 0
        self.cost = 0.0

    def publish(self) -> None:
        self.state.accepted, self.state.logged = self.log.n_issued, self.log.n_written
        try:
            write_state(_keys_dir(), self.key_hash, self.state)
        except OSError:
            _log.exception("could not write the state of trial %s", self.record.trial_id)


class GatewayLogger(LiteLLMTrajectoryLogger):
    """The trajectory logger, finding each call's trial from its key instead of call metadata."""

    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[str, _Trial] = {}
        self._trial_lock = threading.Lock()

    def trial_for(self, key: str) -> _Trial | None:
        """The live trial of a presented key (registered on first sight), or None."""
        record = read_record(_keys_dir(), key)
        if record is None:
            return None
        kh = key_id(key)
        with self._trial_lock:
            trial = self.by_key.get(kh)
            if trial is None or trial.record != record:
                log = self.open_trial(record.trial_id, record.log_path, secrets=[key])
                trial = self.by_key[kh] = _Trial(kh, record, log)
        return trial

    # -- before the call ------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict:
        trial = self.by_key.get(str((user_api_key_dict.metadata or {}).get(META_KEY) or ""))
        if trial is None:
            raise HTTPException(status_code=401, detail="trialbook gateway: unknown trial key")
        rec = trial.record
        over = None
        if rec.step_limit is not None and trial.n_success >= rec.step_limit:
            over = ("step_limit", f"the trial's step limit ({rec.step_limit} model calls) is reached")
        elif rec.cost_limit is not None and trial.cost >= rec.cost_limit:
            over = ("cost_limit", f"the trial's cost budget (${rec.cost_limit:g}) is spent (${trial.cost:.4f})")
        if over is not None:
            trial.state.limit = over[0]  # the proxy logs the refusal as a failed call
            trial.publish()
            raise HTTPException(status_code=429, detail=f"trialbook gateway: {over[1]}")
        data["model"] = rec.model_name
        return data

    # -- after the call -------------------------------------------------------------------

    def _record(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any, status: str) -> None:
        lp = kwargs.get("litellm_params") or {}
        trial = None
        for meta in (lp.get("metadata"), lp.get("litellm_metadata")):
            auth_meta = (meta or {}).get("user_api_key_auth_metadata") if isinstance(meta, dict) else None
            if isinstance(auth_meta, dict) and auth_meta.get(META_KEY):
                trial = self.by_key.get(str(auth_meta[META_KEY]))
                break
        if trial is None:  # not a trial's call (a refused key, a health check)
            return
        kwargs, response_obj = _chat_shaped(kwargs, response_obj)
        meta = {META_TRIAL: trial.record.trial_id, META_PATH: trial.record.log_path}
        kwargs = {**kwargs, "litellm_params": {**lp, "metadata": meta}}
        super()._record(kwargs, response_obj, start_time, end_time, status)
        if status == "success":
            trial.n_success += 1
            cost = kwargs.get("response_cost")
            if isinstance(cost, int | float):
                trial.cost += float(cost)
        trial.publish()


#: Call types whose request is not in the chat shape, and how to bring it there.
_CONVERTERS = {
    "anthropic_messages": shapes.anthropic_request_messages,
    "aanthropic_messages": shapes.anthropic_request_messages,
    "responses": shapes.responses_request_messages,
    "aresponses": shapes.responses_request_messages,
}


def _chat_shaped(kwargs: dict, response_obj: Any) -> tuple[dict, Any]:
    """An Anthropic- or Responses-shaped call's request and response in the chat shape of the log."""
    convert = _CONVERTERS.get(str(kwargs.get("call_type") or ""))
    if convert is None:
        return kwargs, response_obj
    body = ((kwargs.get("litellm_params") or {}).get("proxy_server_request") or {}).get("body")
    if not isinstance(body, dict):
        body = (kwargs.get("proxy_server_request") or {}).get("body")
    if isinstance(body, dict):
        kwargs = {**kwargs, "messages": convert(body)}
    if shapes.is_anthropic_message(response_obj):
        response_obj = shapes.response_as_chat(response_obj)
    return kwargs, response_obj


gateway_logger = GatewayLogger()


async def user_api_key_auth(request: Any, api_key: str) -> Any:
    """The proxy's custom auth: a live trial key passes, anything else is HTTP 401."""
    trial = gateway_logger.trial_for(api_key or "")
    if trial is None:
        raise HTTPException(status_code=401, detail="trialbook gateway: unknown or expired trial key")
    if not _is_trial_route(request.url.path):  # the proxy's admin and management routes are not a trial's
        raise HTTPException(status_code=403, detail=f"trialbook gateway: {request.url.path} is not a model route")
    if request.method == "POST" and _is_model_route(request.url.path):
        trial.log.call_metadata()  # counts the call as accepted: the runner waits for its line
        trial.publish()
    return upstream.proxy_key(api_key=trial.key_hash, key_alias=trial.record.trial_id,
                          metadata={META_KEY: trial.key_hash})
