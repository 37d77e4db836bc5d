"""Routers by name, imported only when used (each pulls in its platform's client library)."""

from __future__ import annotations

import importlib

from .router import Router, RouterConfig, TrafficError

_ROUTERS = {
    "cloudrun": ("cloudrun", "CloudRunRouter", "google-cloud-run"),
    "urlmap": ("urlmap", "UrlMapRouter", "google-cloud-compute"),
    "gateway": ("gateway", "GatewayRouter", "kubernetes"),
    "istio": ("gateway", "IstioRouter", "kubernetes"),
    "command": ("command", "CommandRouter", None),
    "local": ("local", "LocalRouter", None),
}


def make_router(config: RouterConfig) -> Router:
    entry = _ROUTERS.get(config.kind)
    if entry is None:
        raise TrafficError(f"unknown router {config.kind!r} (known: {', '.join(_ROUTERS)})")
    module_name, class_name, package = entry
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ImportError as err:
        if package is None:
            raise
        raise TrafficError(
            f"the {config.kind} router needs {package}, which is not installed: pip install 'bgmigrate[gcp]' ({err})"
        ) from None
    return getattr(module, class_name)(config)
