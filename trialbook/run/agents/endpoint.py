"""Pre-flight check of an LLM variant's model server, before any trial runs.

Without it an unreachable server shows up as every trial failing after its retries. The
check asks ``GET {api_base}/models`` (the OpenAI-compatible listing every common server
answers) with the variant's key: any HTTP answer but 401/403 means the server is there;
no answer, or a refused key, stops the job with the reason. Variants without ``api_base``
(hosted providers reached through LiteLLM's defaults) are not checked.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError, ServiceUnavailableError
from trialbook.run.scrub import SECRET_KEY

#: Seconds to wait for the server's answer.
PREFLIGHT_TIMEOUT_S = 10.0


def check_endpoint(variant_name: str, api_base: str | None, api_key: str | None,
                   timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Raise :class:`ServiceUnavailableError` when ``api_base`` does not answer or refuses the key."""
    if not api_base:
        return
    parts = urllib.parse.urlsplit(api_base.rstrip("/") + "/models")
    if parts.username or parts.password:  # credentials in the URL: urllib wants them apart
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        parts = parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else ""))
    request = urllib.request.Request(urllib.parse.urlunsplit(parts), method="GET")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    where = f"variant {variant_name}: model server {api_base}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310 - the user's own endpoint
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ServiceUnavailableError(f"{where} refused the API key (HTTP {exc.code}); no trial was run") \
                from None
        return  # it answered: a server without a /models route is still a server
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailableError(f"{where} does not answer ({reason}); no trial was run: start the "
                                      "server or fix api_base") from None


def variant_api_key(variant: VariantConfig) -> str | None:
    """The key in the variable named by the variant's ``api_key_env`` (None without one); an unset
    variable is a ConfigError naming it."""
    if not variant.api_key_env:
        return None
    value = os.environ.get(variant.api_key_env)
    if not value:
        raise ConfigError(f"variant {variant.name}: environment variable {variant.api_key_env} "
                          "(api_key_env) is not set")
    return value



SettingsT = TypeVar("SettingsT", bound=BaseModel)


def parse_variant_settings(model: type[SettingsT], variant: VariantConfig, data: dict[str, Any]) -> SettingsT:
    """An LLM agent's ``settings`` validated by ``model``: a problem is a one-line ConfigError naming
    the variant and the key, and ``model_kwargs`` may not carry a secret (keys go in api_key_env)."""
    try:
        settings = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"variant {variant.name}: settings.{where}: {msg}") from None
    kwargs: dict[str, Any] = getattr(settings, "model_kwargs", None) or {}
    secret_keys = sorted(k for k in kwargs if SECRET_KEY.search(k))
    if secret_keys:
        raise ConfigError(f"variant {variant.name}: settings.model_kwargs.{secret_keys[0]}: put API keys in "
                          "an environment variable and name it with api_key_env")
    return settings
