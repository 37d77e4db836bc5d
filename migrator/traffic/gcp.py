"""What the GCP routers share: credentials and endpoint for the official client libraries.

``BGMIGRATE_GCP_API_ENDPOINT`` (or ``api_endpoint`` in the router's configuration) points the
client at another endpoint, e.g. a local emulator ``http://127.0.0.1:PORT`` (the REST transport
takes the scheme from it); ``BGMIGRATE_GCP_ANONYMOUS=1`` (or ``anonymous = true``) sends no
credentials. Without them the clients use Application Default Credentials and Google's endpoints.
"""

from __future__ import annotations

import os
from typing import Any

from .router import RouterConfig, TrafficError

ENDPOINT_ENV = "BGMIGRATE_GCP_API_ENDPOINT"
ANONYMOUS_ENV = "BGMIGRATE_GCP_ANONYMOUS"


def client_kwargs(config: RouterConfig) -> dict[str, Any]:
    """``credentials``/``client_options``/``transport`` for a google-cloud client constructor."""
    from google.api_core.client_options import ClientOptions

    kwargs: dict[str, Any] = {"transport": "rest"}
    endpoint = config.api_endpoint or os.environ.get(ENDPOINT_ENV)
    if endpoint:
        kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
    if config.anonymous or os.environ.get(ANONYMOUS_ENV) == "1":
        from google.auth.credentials import AnonymousCredentials

        kwargs["credentials"] = AnonymousCredentials()
    return kwargs


def api_error(err: BaseException, resource: str, action: str) -> TrafficError:
    """A google.api_core exception as one line naming the resource (403 says which permission)."""
    from google.api_core import exceptions

    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or str(err)
    message = " ".join(str(message).split())
    if isinstance(err, exceptions.NotFound):
        return TrafficError(f"{resource} not found while trying to {action}: {message}")
    if isinstance(err, exceptions.Forbidden):
        return TrafficError(f"permission denied on {resource} while trying to {action}: {message}")
    if isinstance(err, exceptions.PreconditionFailed):
        return TrafficError(
            f"{resource} was changed by someone else while trying to {action} (stale version): {message}"
        )
    if isinstance(err, exceptions.DeadlineExceeded):
        return TrafficError(f"timed out while trying to {action} on {resource}: {message}")
    return TrafficError(f"{resource}: cannot {action}: {message}" + (f" (HTTP {code})" if code else ""))
