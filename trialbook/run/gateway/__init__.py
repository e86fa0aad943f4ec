"""The per-job model gateway: a LiteLLM proxy that every gateway agent's model calls go through.

See :mod:`.server` (the host side), :mod:`.hooks` (inside the proxy), :mod:`.bridge`
(inside the sandbox) and docs/agents.md.
"""

from trialbook.run.gateway.server import Gateway, TrialGateway

__all__ = ["Gateway", "TrialGateway"]
