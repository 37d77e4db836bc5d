"""Cloud Monitoring health gate: a Cloud Run revision's share of 5xx responses over a window.

Reads ``run.googleapis.com/request_count`` (a DELTA INT64 metric on the ``cloud_run_revision``
resource, labelled ``response_code`` and ``response_code_class``) through the official
``google.cloud.monitoring_v3.MetricServiceClient``. That library has no REST transport (2.32, the
latest, ships gRPC only), so it speaks gRPC: to Google's endpoint with Application Default
Credentials, or, when the configured endpoint is ``http://HOST:PORT`` (a local emulator, see
:mod:`.gcp`), over a plaintext channel to HOST:PORT with no credentials. ``https://HOST`` or a bare
host is used as the gRPC host (TLS).
"""

from __future__ import annotations

import time
from typing import Any

from .gcp import api_error, client_kwargs
from .router import RouterConfig, TrafficError

REQUEST_COUNT = "run.googleapis.com/request_count"


def _client(config: RouterConfig) -> Any:
    from google.cloud import monitoring_v3

    kwargs = client_kwargs(config)
    kwargs.pop("transport", None)  # "rest": not offered by google-cloud-monitoring
    options = kwargs.get("client_options")
    endpoint = getattr(options, "api_endpoint", None) or ""
    if endpoint.startswith("http://"):
        import grpc
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

        channel = grpc.insecure_channel(endpoint.removeprefix("http://").rstrip("/"))
        return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    if endpoint:
        from google.api_core.client_options import ClientOptions

        kwargs["client_options"] = ClientOptions(api_endpoint=endpoint.removeprefix("https://").rstrip("/"))
    return monitoring_v3.MetricServiceClient(**kwargs)


def _where(service: str, config: RouterConfig) -> tuple[str, str, str | None]:
    """(project, short service name, region or None) from a short or full service name."""
    if service.startswith("projects/"):
        parts = service.split("/")
        if len(parts) != 6 or parts[2] != "locations" or parts[4] != "services":
            raise TrafficError(f"{service!r} is not projects/PROJECT/locations/REGION/services/SERVICE")
        return parts[1], parts[5], parts[3]
    if not config.project:
        raise TrafficError(f"the error-ratio gate for Cloud Run service {service} needs the project (project = ...)")
    return config.project, service, config.region


def request_counts(config: RouterConfig, *, service: str, revision: str, window_s: int) -> tuple[int, int]:
    """(all requests, 5xx responses) served by ``revision`` of ``service`` over the last ``window_s``."""
    from google.api_core import exceptions
    from google.cloud import monitoring_v3

    if not isinstance(window_s, int) or isinstance(window_s, bool) or window_s <= 0:
        raise TrafficError(f"the error-ratio window must be a positive number of seconds, not {window_s!r}")
    project, name, region = _where(service, config)
    revision = revision.rsplit("/", 1)[-1]
    where = (
        f'metric.type = "{REQUEST_COUNT}" AND resource.type = "cloud_run_revision"'
        f' AND resource.labels.service_name = "{name}" AND resource.labels.revision_name = "{revision}"'
    )
    if region:
        where += f' AND resource.labels.location = "{region}"'
    now = time.time()
    interval = monitoring_v3.TimeInterval(
        end_time={"seconds": int(now), "nanos": int((now % 1) * 1e9)},
        start_time={"seconds": int(now - window_s), "nanos": int((now % 1) * 1e9)},
    )
    resource = f"Cloud Monitoring (project {project})"
    client = _client(config)
    total = errors = 0
    try:  # one query, split by response_code_class: both numbers from the same snapshot
        for series in client.list_time_series(
            name=f"projects/{project}",
            filter=where,
            interval=interval,
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
            timeout=min(config.timeout_s, 60.0),
        ):
            count = sum(p.value.int64_value or int(p.value.double_value) for p in series.points)
            total += count
            if series.metric.labels.get("response_code_class") == "5xx":
                errors += count
    except exceptions.GoogleAPICallError as err:
        raise api_error(err, resource, f"read {REQUEST_COUNT} of revision {revision}") from err
    finally:
        client.transport.close()
    return total, errors


def error_ratio(config: RouterConfig, *, service: str, revision: str, window_s: int) -> float | None:
    """5xx responses / all requests of ``revision`` over the last ``window_s`` seconds (0.0..1.0);
    None when it served no request in the window (no evidence either way)."""
    total, errors = request_counts(config, service=service, revision=revision, window_s=window_s)
    return errors / total if total else None
