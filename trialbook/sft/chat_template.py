"""Rendering SFT examples with a model's own Jinja chat template, as the model sees them.

The environment matches the one Hugging Face tokenizers apply chat templates in: sandboxed
(templates are data from a model repository, not code we trust), ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that keeps non-ASCII,
and the ``raise_exception`` and ``strftime_now`` helpers templates call.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from trialbook.errors import ConfigError
from trialbook.sft.messages import Message
from trialbook.sft.render import Chunk


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


class ChatTemplate:
    """A compiled chat template; :meth:`chunks` renders one example as a single counted chunk."""

    def __init__(self, source: str) -> None:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise jinja2.exceptions.TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            self.template = env.from_string(source)
        except jinja2.exceptions.TemplateError as exc:
            raise ConfigError(f"the tokenizer's chat template does not compile: {exc}") from None
        self._errors = jinja2.exceptions.TemplateError

    def render(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
        """The whole conversation as the template writes it (no generation prompt)."""
        try:
            return self.template.render(messages=messages, tools=tools or None, add_generation_prompt=False,
                                        bos_token="", eos_token="")
        except self._errors as exc:
            raise ConfigError(f"the tokenizer's chat template refused an example: {exc}") from None

    def chunks(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> list[Chunk]:
        """One chunk (not cached: every example differs) for :class:`trialbook.sft.tokens.TokenCounter`."""
        return [(self.render(messages, tools), False)]
