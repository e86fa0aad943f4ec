"""Rendering SFT examples with a model's own Jinja chat template, as the model sees them.

The environment matches the one Hugging Face tokenizers apply chat templates in: sandboxed
(templates are data from a model repository, not code we trust), ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension, a ``{% generation %}`` block (it only marks
the assistant's part), a ``tojson`` filter that keeps non-ASCII, the ``raise_exception`` and
``strftime_now`` helpers, and the tokenizer's named special tokens (``bos_token``, ...).
jinja2 is imported here only, when a template is first compiled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trialbook.errors import ConfigError
from trialbook.sft.messages import Message
from trialbook.sft.render import Chunk


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    """The ``tojson`` filter chat templates expect: plain JSON, no HTML escaping."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _environment() -> Any:
    """A sandboxed Jinja environment configured as for Hugging Face chat templates."""
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` renders its body unchanged."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


class ChatTemplate:
    """A compiled chat template; :meth:`chunks` renders one example as a single counted chunk."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        import jinja2

        self._errors = jinja2.exceptions.TemplateError
        self.special_tokens = dict(special_tokens or {})
        try:
            self.template = _environment().from_string(source)
        except self._errors as exc:
            raise ConfigError(f"the tokenizer's chat template does not compile: {exc}") from None

    def render(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
        """The whole conversation as the template writes it (no generation prompt)."""
        try:
            return self.template.render(messages=messages, tools=tools or None, documents=None,
                                        add_generation_prompt=False, **self.special_tokens)
        except self._errors as exc:
            raise ConfigError(f"the tokenizer's chat template refused an example: {exc}") from None

    def chunks(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> list[Chunk]:
        """One chunk (not cached: every example differs) for :class:`trialbook.sft.tokens.TokenCounter`."""
        return [(self.render(messages, tools), False)]
