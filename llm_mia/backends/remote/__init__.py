"""Models behind an OpenAI-compatible API: client, capability probe, token log-probs, response cache.

See :mod:`llm_mia.backends.remote.model` for how such a model stands in for a white-box one.
"""

from llm_mia.backends.remote.client import ApiClient, ApiSettings, RemoteError
from llm_mia.backends.remote.model import RemoteModel, connect

__all__ = ["ApiClient", "ApiSettings", "RemoteError", "RemoteModel", "connect"]
