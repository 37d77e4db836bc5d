"""Cloud Run: blue and green are two revisions of one service; the split is the service's traffic.

Through the official ``google.cloud.run_v2`` clients over REST (:func:`~.gcp.client_kwargs`). What
serves is ``Service.traffic_statuses`` (the ``traffic`` field is only what was asked for). A change:

1. reads the service and both revisions (an unknown revision is refused before anything changes);
2. sends ``traffic`` only (``update_mask=traffic``; the body holds the name, the etag and the
   traffic list, never the template read back, which Cloud Run can take for a new revision with a
   name it already has); every tag is kept: on blue or green it stays on that revision, on any
   other revision or on LATEST it stays at 0%;
3. waits for the long-running operation and re-reads: done means ``reconciling`` false,
   ``observed_generation == generation`` and ``traffic_statuses`` equal to the split asked for.

A stale etag (someone else wrote the service between the read and the write) is re-read: when the
traffic (serving and asked for) is still what was read, the change is sent once more with the new
etag; when it is not, the change is refused and the other change is left in place.

Traffic to a third party (another revision, LATEST) is an error naming it: the switch cannot
reason about a split it does not own. Options (``RouterConfig.options``): ``poll_interval_s``, the
first wait between two polls of the operation (1 s, growing 1.5x up to 10 s).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from .gcp import api_error, client_kwargs
from .router import Router, RouterConfig, SideHealth, Split, TrafficError

REVISION, LATEST = 2, 1  # run_v2.TrafficTargetAllocationType
TYPE_NAMES = {REVISION: "REVISION", LATEST: "LATEST"}


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _type(target: Any) -> int:
    return int(target.type_)


class CloudRunRouter(Router):
    kind = "cloudrun"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        config.require("target", "blue", "green")
        target = str(config.target)
        if target.startswith("projects/"):
            parts = target.split("/")
            if len(parts) != 6 or parts[2] != "locations" or parts[4] != "services" or not all(parts[1::2]):
                raise TrafficError(f"--target {target!r} is not projects/PROJECT/locations/REGION/services/SERVICE")
            self.name = target
        else:
            if "/" in target:
                raise TrafficError(f"--target {target!r}: a Cloud Run service name, or its full resource name")
            config.require("project", "region")
            self.name = f"projects/{config.project}/locations/{config.region}/services/{target}"
        self.blue = _short(str(config.blue))
        self.green = _short(str(config.green))
        if self.blue == self.green:
            raise TrafficError(f"blue and green are the same revision ({self.blue}) of {self.describe()}")
        self._services: Any = None
        self._revisions: Any = None

    # ---- clients ----------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"Cloud Run service {self.name}"

    @property
    def services(self) -> Any:
        if self._services is None:
            from google.cloud import run_v2

            self._services = run_v2.ServicesClient(**client_kwargs(self.config))
        return self._services

    @property
    def revisions(self) -> Any:
        if self._revisions is None:
            from google.cloud import run_v2

            self._revisions = run_v2.RevisionsClient(**client_kwargs(self.config))
        return self._revisions

    def close(self) -> None:
        for client in (self._services, self._revisions):
            if client is not None:
                client.transport.close()
        self._services = self._revisions = None

    def _get(self, action: str) -> Any:
        from google.api_core import exceptions

        try:
            return self.services.get_service(name=self.name, timeout=min(self.config.timeout_s, 60.0))
        except exceptions.GoogleAPICallError as err:
            raise api_error(err, self.describe(), action) from err

    def _side(self, revision: str) -> str:
        return {self.blue: "blue", self.green: "green"}.get(revision, "")

    # ---- reading traffic ----------------------------------------------------------------------------

    def _describe_traffic(self, targets: Any) -> str:
        parts = []
        for t in targets:
            rev = _short(t.revision)
            who = "LATEST" + (f" ({rev})" if rev else "") if _type(t) == LATEST else rev
            side = self._side(rev) if _type(t) == REVISION else ""
            parts.append(f"{side + ' ' if side else ''}{who} {t.percent}%" + (f" (tag {t.tag})" if t.tag else ""))
        return ", ".join(parts) or "no traffic targets"

    @staticmethod
    def _allocation(targets: Any) -> dict[tuple[int, str], int]:
        """(type, revision) -> percent, the non-zero ones: what a change must not silently overwrite."""
        out: dict[tuple[int, str], int] = {}
        for t in targets:
            key = (_type(t), _short(t.revision) if _type(t) == REVISION else "")
            out[key] = out.get(key, 0) + t.percent
        return {k: v for k, v in out.items() if v}

    def _serving(self, service: Any) -> Split:
        """The split in ``traffic_statuses``; traffic to anything but blue and green is an error."""
        if not service.traffic_statuses:
            raise TrafficError(f"{self.describe()} reports no serving traffic (traffic_statuses is empty)")
        percents = {"blue": 0, "green": 0}
        others = []
        for t in service.traffic_statuses:
            rev = _short(t.revision)
            side = self._side(rev) if _type(t) == REVISION else ""
            if side:
                percents[side] += t.percent
            elif t.percent:
                others.append(
                    f"{t.percent}% to LATEST" + (f" (now {rev})" if rev else "")
                    if _type(t) == LATEST
                    else f"{t.percent}% to revision {rev}"
                )
        if others:
            raise TrafficError(
                f"{self.describe()} sends {' and '.join(others)}, which is neither blue ({self.blue}) nor green "
                f"({self.green}); route all traffic to the two revisions first "
                f"(gcloud run services update-traffic {_short(self.name)} --to-revisions={self.blue}=100)"
            )
        try:
            return Split(blue=percents["blue"], green=percents["green"])
        except TrafficError as err:
            raise TrafficError(f"{self.describe()}: serving traffic is not a whole split: {err}") from err

    def current(self) -> Split:
        return self._serving(self._get("read its traffic"))

    # ---- writing traffic ------------------------------------------------------------------------------

    def _new_traffic(self, service: Any, percents: dict[str, int]) -> list:
        """blue and green at ``percents`` (revision -> percent), every other tag kept at 0%."""
        from google.cloud import run_v2

        tags: dict[tuple[int, str], list[str]] = {}
        for t in service.traffic:
            key = (_type(t), _short(t.revision) if _type(t) == REVISION else "")
            if t.tag and t.tag not in tags.setdefault(key, []):
                tags[key].append(t.tag)
        out = []
        for rev, percent in percents.items():
            rev_tags = tags.pop((REVISION, rev), [])
            if percent or rev_tags:
                out.append(
                    run_v2.TrafficTarget(
                        type_=REVISION, revision=rev, percent=percent, tag=rev_tags[0] if rev_tags else ""
                    )
                )
            out.extend(run_v2.TrafficTarget(type_=REVISION, revision=rev, tag=tag) for tag in rev_tags[1:])
        for (kind, rev), rest in tags.items():
            out.extend(run_v2.TrafficTarget(type_=kind, revision=rev, tag=tag) for tag in rest)
        return out

    def _polling(self) -> Any:
        from google.api_core.future import polling

        initial = float(self.config.options.get("poll_interval_s", 1.0))
        return polling.DEFAULT_POLLING.with_delay(initial=initial, maximum=max(initial, 10.0), multiplier=1.5)

    @staticmethod
    def _stale(err: Exception) -> bool:
        """A stale etag, by whichever code the API uses: 412, 409 ABORTED (AIP-154), 400 FAILED_PRECONDITION.
        Over REST google.api_core picks the exception class by HTTP status only, so the google.rpc status
        name is read from the response body."""
        from google.api_core import exceptions

        try:
            status = err.response.json().get("error", {}).get("status", "")  # type: ignore[attr-defined]
        except (ValueError, AttributeError):
            status = ""
        if isinstance(err, (exceptions.PreconditionFailed, exceptions.Aborted, exceptions.FailedPrecondition)):
            return True
        if isinstance(err, exceptions.Conflict) and not isinstance(err, exceptions.AlreadyExists):
            return status in ("ABORTED", "")
        return isinstance(err, exceptions.BadRequest) and status == "FAILED_PRECONDITION"

    def _patch(self, service: Any, traffic: list) -> Any:
        from google.cloud import run_v2
        from google.protobuf import field_mask_pb2

        body = run_v2.Service(name=self.name, traffic=traffic, etag=service.etag)
        return self.services.update_service(
            service=body,
            update_mask=field_mask_pb2.FieldMask(paths=["traffic"]),
            timeout=min(self.config.timeout_s, 60.0),
        )

    def _change(
        self,
        action: str,
        build: Callable[[Any], list],
        check: Callable[[Any], str | None],
        *,
        refuse_third: bool = True,
        skip_when_there: bool = False,
    ) -> Any:
        """Read, build the traffic list, write it with the etag (one retry on a stale etag when the
        traffic did not change), wait for the operation, re-read and ``check`` (a problem or None).
        ``skip_when_there``: no write when the service already passes ``check``, settled, with the
        traffic asked for equal to the traffic serving (a rerun after a crash changes nothing)."""
        from google.api_core import exceptions

        service = self._get(action)
        if refuse_third:
            self._serving(service)
        serving, wanted = self._allocation(service.traffic_statuses), self._allocation(service.traffic)
        settled = not service.reconciling and service.observed_generation == service.generation
        if skip_when_there and settled and serving == wanted and check(service) is None:
            return service
        traffic = build(service)
        try:
            operation = self._patch(service, traffic)
        except exceptions.GoogleAPICallError as err:
            if not self._stale(err):
                raise api_error(err, self.describe(), action) from err
            fresh = self._get(action)
            if self._allocation(fresh.traffic_statuses) != serving or self._allocation(fresh.traffic) != wanted:
                pending = ""
                if self._allocation(fresh.traffic) != self._allocation(fresh.traffic_statuses):
                    pending = f" (asked for, not yet serving: {self._describe_traffic(fresh.traffic)})"
                raise TrafficError(
                    f"{self.describe()}: traffic was changed by someone else while trying to {action}: it was "
                    f"{self._describe_traffic(service.traffic_statuses)}, now "
                    f"{self._describe_traffic(fresh.traffic_statuses)}{pending}; not overwriting it"
                ) from err
            service = fresh
            try:
                operation = self._patch(service, build(service))
            except exceptions.GoogleAPICallError as again:
                raise api_error(again, self.describe(), action) from again
        self._wait(operation, action)
        after = self._get(action)
        problems = []
        if after.reconciling:
            problems.append("still reconciling")
        if after.observed_generation != after.generation:
            problems.append(f"observed generation {after.observed_generation} of {after.generation}")
        problem = check(after)
        if problem:
            problems.append(problem)
        if problems:
            raise TrafficError(
                f"{self.describe()}: the operation to {action} finished but the service is not there: "
                f"{'; '.join(problems)} (serving: {self._describe_traffic(after.traffic_statuses)})"
            )
        return after

    def _wait(self, operation: Any, action: str) -> None:
        from google.api_core import exceptions

        try:
            operation.result(timeout=self.config.timeout_s, polling=self._polling())
        except concurrent.futures.TimeoutError as err:  # not the builtin TimeoutError before Python 3.11
            raise TrafficError(
                f"{self.describe()}: the operation to {action} did not finish within {self.config.timeout_s:g} s "
                f"({self._operation_name(operation)}; it may still complete); serving now: {self._serving_now()}"
            ) from err
        except exceptions.GoogleAPICallError as err:
            if not hasattr(err.response, "error"):  # polling failed (an HTTP error), not the operation itself
                raise api_error(err, self.describe(), action) from err
            message = " ".join(str(err.message or err).split())
            raise TrafficError(
                f"{self.describe()}: the operation to {action} failed: {message} "
                f"(code {err.grpc_status_code.name if err.grpc_status_code else err.code}); "
                f"serving now: {self._serving_now()}"
            ) from err

    @staticmethod
    def _operation_name(operation: Any) -> str:
        return getattr(getattr(operation, "operation", None), "name", "") or "operation"

    def _serving_now(self) -> str:
        try:
            return self._describe_traffic(self._get("read its traffic").traffic_statuses)
        except TrafficError as err:
            return f"unknown ({err})"

    def _check_revisions(self) -> None:
        from google.api_core import exceptions

        for side, rev in (("blue", self.blue), ("green", self.green)):
            try:
                self.revisions.get_revision(name=f"{self.name}/revisions/{rev}", timeout=min(self.config.timeout_s, 60))
            except exceptions.NotFound as err:
                raise TrafficError(f"{side} revision {rev} of {self.describe()} not found; nothing changed") from err
            except exceptions.GoogleAPICallError as err:
                raise api_error(err, f"revision {rev} of {self.describe()}", "read it") from err

    def set_split(self, split: Split) -> Split:
        if not isinstance(split, Split):
            raise TrafficError(f"set_split takes a Split, not {split!r}")
        self._check_revisions()
        percents = {self.blue: split.blue, self.green: split.green}

        def check(service: Any) -> str | None:
            try:
                now = self._serving(service)
            except TrafficError as err:
                return str(err)
            return None if now == split else f"serving {now}, not {split}"

        after = self._change(
            f"set traffic to {split}", lambda s: self._new_traffic(s, percents), check, skip_when_there=True
        )
        return self._serving(after)

    # ---- health and exposure ----------------------------------------------------------------------------

    def health(self) -> dict[str, SideHealth]:
        from google.api_core import exceptions
        from google.cloud import run_v2

        out = {}
        for side, rev in (("blue", self.blue), ("green", self.green)):
            try:
                revision = self.revisions.get_revision(
                    name=f"{self.name}/revisions/{rev}", timeout=min(self.config.timeout_s, 60)
                )
            except exceptions.NotFound:
                out[side] = SideHealth(side, False, f"revision {rev} not found")
                continue
            except exceptions.GoogleAPICallError as err:
                raise api_error(err, f"revision {rev} of {self.describe()}", "read its health") from err
            ready = next((c for c in revision.conditions if c.type_ == "Ready"), None)
            if ready is None:
                out[side] = SideHealth(side, None, f"revision {rev} reports no Ready condition")
                continue
            state = run_v2.Condition.State(ready.state)
            detail = f"revision {rev} Ready: {state.name.removeprefix('CONDITION_').lower()}"
            reason = ready.revision_reason or ready.reason  # enums; 0 is unset
            if reason:
                detail += f" ({reason.name})"
            if ready.message:
                detail += f": {ready.message}"
            out[side] = SideHealth(side, state == run_v2.Condition.State.CONDITION_SUCCEEDED, detail)
        return out

    def blue_exposure(self) -> list[str]:
        """Every way blue can still get requests: a percent in ``traffic_statuses``, a tag (its URL
        reaches the revision whatever the percentages), LATEST resolving to blue, or a change asked for
        and not yet serving that gives blue traffic."""
        service = self._get("read its traffic")
        latest = _short(service.latest_ready_revision)
        reasons: list[str] = []
        tags: set[str] = set()
        serving = wanted = 0
        for t in service.traffic_statuses:
            if (_short(t.revision) or (latest if _type(t) == LATEST else "")) != self.blue:
                continue
            via = " through LATEST" if _type(t) == LATEST else ""
            serving += t.percent
            if t.percent:
                reasons.append(f"{self.describe()} sends {t.percent}% to blue ({self.blue}){via}")
            if t.tag:
                tags.add(t.tag)
                reasons.append(
                    f"tag {t.tag!r} points at blue ({self.blue}){via}: {t.uri or 'its tag URL'} reaches it "
                    "whatever the percentages"
                )
        for t in service.traffic:
            if (_short(t.revision) if _type(t) == REVISION else latest) != self.blue:
                continue
            wanted += t.percent
            if t.tag and t.tag not in tags:
                reasons.append(f"tag {t.tag!r} is being set on blue ({self.blue}) (asked for, not yet serving)")
        if wanted > serving:
            reasons.append(
                f"{self.describe()} is being changed to send {wanted}% to blue ({self.blue}) "
                f"(generation {service.generation}, observed {service.observed_generation})"
            )
        return reasons

    def drop_blue_tags(self) -> list[str]:
        """Remove every tag on blue's revision (decommission: its tag URLs stop reaching it); the
        percentages do not change. Returns the tags removed ([] and no write when there are none)."""
        from google.cloud import run_v2

        def on_blue(t: Any) -> bool:
            return bool(t.tag) and _type(t) == REVISION and _short(t.revision) == self.blue

        service = self._get("read its traffic")
        tags = sorted({t.tag for t in service.traffic if on_blue(t)})
        if not tags:
            return []

        def build(svc: Any) -> list:
            out = []
            for t in svc.traffic:
                if not on_blue(t):
                    out.append(run_v2.TrafficTarget(type_=_type(t), revision=t.revision, percent=t.percent, tag=t.tag))
                elif t.percent:  # the entry carried blue's percent: it keeps it, without the tag
                    out.append(run_v2.TrafficTarget(type_=REVISION, revision=t.revision, percent=t.percent))
            return out

        def check(svc: Any) -> str | None:
            left = sorted(t.tag for t in svc.traffic_statuses if on_blue(t))
            return f"tags still on blue: {', '.join(left)}" if left else None

        self._change(f"remove blue's tags ({', '.join(tags)})", build, check, refuse_third=False)
        return tags
