"""Opening a store's fsspec file system, with credentials left to the standard resolution.

``s3://`` goes through s3fs (the ``trialbook[s3]`` extra): credentials, region and endpoint
come from the AWS environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, ...) or ``~/.aws`` files, as botocore resolves them. trialbook never
reads them into its own files; the values found in the environment are registered with
:mod:`trialbook.secrets` so that no file or output it writes can carry them by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from trialbook import secrets
from trialbook.errors import ConfigError
from trialbook.layout.store_url import StoreURL, credential_option

#: Environment variables whose values are credentials (scrubbed from everything trialbook writes).
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                  "GOOGLE_APPLICATION_CREDENTIALS_JSON", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                  "AZURE_STORAGE_CONNECTION_STRING")
#: Extras a protocol needs, for the error when it is missing.
_EXTRAS = {"s3": "trialbook[s3] (s3fs)", "s3a": "trialbook[s3] (s3fs)", "gs": "gcsfs", "gcs": "gcsfs",
           "az": "adlfs", "abfs": "adlfs"}


@dataclass
class Store:
    """An open store: its URL and the fsspec file system that reaches it."""

    url: StoreURL
    fs: Any

    @property
    def is_local(self) -> bool:
        return self.url.protocol in ("file", "local")


def register_credential_env() -> None:
    """Add the credential values of the environment to the secrets every writer scrubs."""
    secrets.register(v for k in CREDENTIAL_ENV if (v := os.environ.get(k)))


def open_store(url: str | StoreURL, options: dict[str, Any] | None = None) -> Store:
    """The file system of ``url``; a missing backend package is a one-line error naming the extra."""
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    options = dict(options or {})
    bad = [k for k in options if credential_option(str(k))]
    if bad:
        raise ConfigError(f"store option {bad[0]!r} looks like a credential; credentials come only from the "
                          "environment or profile")
    register_credential_env()
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with huggingface_hub, a dependency
        raise ConfigError("the artifact store needs fsspec: pip install 'trialbook[s3]'") from None
    if parsed.protocol in ("s3", "s3a"):
        # fresh listings every time: another process (a resumed run, `trialbook push`) may have written
        options.setdefault("use_listings_cache", False)
        options.setdefault("skip_instance_cache", True)
    try:
        fs = fsspec.filesystem(parsed.protocol, **options)
    except ImportError:
        need = _EXTRAS.get(parsed.protocol, f"the fsspec backend of {parsed.protocol}://")
        raise ConfigError(f"store {parsed}: install {need} to use it") from None
    except ValueError as exc:
        raise ConfigError(f"store {parsed}: {exc}") from None
    return Store(parsed, fs)
