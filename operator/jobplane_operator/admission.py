"""The admission webhook: kopf's validating and mutating handlers for every Jobplane kind.

Served by every operator replica (the controllers run on the Lease's leader only), through kopf's
WebhookServer with the certificate the chart (or the test harness) provides. The webhook configurations
are installed by the chart, not by kopf: the operator needs no rights on them. Each handler has an id,
which is the URL path its configuration names (``/jobrun-requester``, ``/jobrun``, ...).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import APPROVAL_ANNOTATION, VERSION, JobDefinition, JobRun, JobSchedule
from jobplane_operator.handlers import scan_only_at_start, wait_for_served_kinds
from jobplane_operator.kube import Clients
from jobplane_operator.parsing import parsed
from jobplane_operator.reconcile.admission import (
    FORCE_VERB,
    Denial,
    approval_of,
    force_denial,
    pods_denial,
    requester_of,
    review_approval,
    review_run,
    review_schedule,
    schedule_requester,
    status_code,
)
from jobplane_operator.settings import OperatorSettings

__all__ = ["WEBHOOK_PATHS", "build_admission_registry"]

log = logging.getLogger(__name__)

# The handler ids: the paths the webhook configurations call (charts/jobplane, tests/stack.py).
WEBHOOK_PATHS = {
    "mutating": {"jobruns": "jobrun-requester", "jobschedules": "jobschedule-requester"},
    "validating": {
        "jobruns": "jobrun",
        "jobschedules": "jobschedule",
        "jobqueues": "jobqueue",
        "jobrepositories": "jobrepository",
        "jobdefinitions": "jobdefinition",
    },
}


class _WebhookServer(kopf.WebhookServer):
    """kopf's webhook server, with a file that exists while it listens: the readiness probe. A TCP probe
    cannot tell replicas apart on the host's network, where they share the port (SO_REUSEPORT)."""

    def __init__(self, *, ready_file: Path | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready_file = ready_file

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        try:
            async for client_config in super().__call__(fn):
                if self.ready_file is not None:
                    self.ready_file.touch()
                yield client_config
        finally:
            if self.ready_file is not None:
                self.ready_file.unlink(missing_ok=True)


def _refuse(denial: Denial | None) -> None:
    if denial is not None:
        raise kopf.AdmissionError(str(denial), code=status_code(denial))


def build_admission_registry(options: OperatorSettings) -> kopf.OperatorRegistry:
    """The admission handlers, and the indexes of definitions and queues they decide on."""
    registry = kopf.OperatorRegistry()
    wait_for_served_kinds(registry, options.namespaces)
    clients: list[Clients] = []
    trusted = frozenset(options.trusted_requesters)
    self_approval_groups = frozenset(options.self_approval_groups)

    def api() -> Clients:
        return clients[0]

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        scan_only_at_start(settings, options.namespaces)
        settings.posting.level = logging.WARNING
        # A line per review from kopf ("Webhook ... succeeded") and from aiohttp's access log cost a
        # good part of a review's time; refusals are logged below.
        for name in ("kopf.objects", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
        settings.admission.server = _WebhookServer(
            ready_file=options.webhook_ready_file,
            addr=options.webhook_address,
            port=options.webhook_port,
            certfile=str(options.webhook_cert_file),
            pkeyfile=str(options.webhook_key_file),
        )
        settings.admission.managed = None  # the chart installs the configurations
        clients.append(Clients.load())

    # In-memory copies kept by kopf's watches: a run's admission costs no API call for them.
    @kopf.index(GROUP, VERSION, "jobdefinitions", id="admission_definitions", registry=registry)
    def admission_definitions(namespace: str | None, body: Any, **_: Any) -> dict[Any, Any]:
        definition = parsed(JobDefinition, body)
        return {namespace: definition} if definition is not None else {}

    @kopf.index(GROUP, VERSION, "jobqueues", id="admission_queues", registry=registry)
    def admission_queues(namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): True}

    def stamp_approval(body: Any, spec: Any, patch: kopf.Patch, userinfo: Any, old: Any) -> None:
        # An approver's annotation becomes spec.approval, naming them and the time (see approval_of).
        given = (spec or {}).get("approval")
        stamped = approval_of(
            (body.get("metadata") or {}).get("annotations"),
            given,
            ((old or {}).get("spec") or {}).get("approval"),
            username=str(userinfo.get("username", "")),
            trusted=trusted,
            now=datetime.now(UTC),
        )
        if stamped != given:
            patch.spec["approval"] = stamped

    def refuse_approval(
        kind: str, body: Any, namespace: str, userinfo: Any, old: Any, operation: str
    ) -> None:
        new_meta, old_meta = body.get("metadata") or {}, (old or {}).get("metadata") or {}
        plural = "jobruns" if kind == "JobRun" else "jobschedules"
        denial = review_approval(
            kind,
            requested_by=(body.get("spec") or {}).get("requestedBy"),
            annotations=new_meta.get("annotations"),
            approval=(body.get("spec") or {}).get("approval"),
            old_annotations=old_meta.get("annotations"),
            old_approval=((old or {}).get("spec") or {}).get("approval"),
            creating=operation == "CREATE",
            username=str(userinfo.get("username", "")),
            groups=list(userinfo.get("groups") or []),
            trusted=trusted,
            self_approval_groups=self_approval_groups,
            may_approve=lambda: api().may(userinfo, "approve", plural, namespace, group=GROUP),
        )
        if denial is not None:
            log.info(
                "approval refused kind=%s namespace=%s reason=%s user=%s",
                kind, namespace, denial.reason, userinfo.get("username", ""),
            )  # fmt: skip
        _refuse(denial)

    @kopf.on.mutate(
        GROUP, VERSION, "jobruns", id=WEBHOOK_PATHS["mutating"]["jobruns"], operations=["CREATE", "UPDATE"],
        registry=registry,
    )  # fmt: skip
    async def stamp_requester(body: Any, spec: Any, patch: kopf.Patch, userinfo: Any, **kwargs: Any) -> None:
        if kwargs.get("operation") == "CREATE":
            given = (spec or {}).get("requestedBy")
            stamped = requester_of(given, str(userinfo.get("username", "")), trusted)
            if stamped != given:
                patch.spec["requestedBy"] = stamped
        stamp_approval(body, spec, patch, userinfo, kwargs.get("old"))

    @kopf.on.validate(
        GROUP, VERSION, "jobruns", id=WEBHOOK_PATHS["validating"]["jobruns"], operations=["CREATE", "UPDATE"],
        registry=registry,
    )  # fmt: skip
    async def validate_run(body: Any, namespace: str | None, userinfo: Any, **kwargs: Any) -> None:
        # Async: a review is decided in the event loop from the indexes (a thread hop costs more than the
        # decision); only API calls (a sensitive run's Secret, a refusal's second look, an approver's
        # SubjectAccessReview) go to a thread.
        run = JobRun.model_validate(copy.deepcopy(dict(body)))
        namespace = namespace or run.metadata.namespace or ""
        username = str(userinfo.get("username", ""))
        old, body = kwargs.get("old"), dict(body)
        if kwargs.get("operation") == "UPDATE":
            # Only an approval decision is reviewed on a change (the rest of the spec is immutable, by CEL,
            # but cancel); the approver's SubjectAccessReview is an API call.
            before = JobRun.model_validate(copy.deepcopy(dict(old))) if old else None
            if any(
                decided.spec.approval is not None
                or APPROVAL_ANNOTATION in (decided.metadata.annotations or {})
                for decided in (run, before)
                if decided is not None
            ):
                await asyncio.to_thread(refuse_approval, "JobRun", body, namespace, userinfo, old, "UPDATE")
            return
        if run.spec.approval is not None or APPROVAL_ANNOTATION in (run.metadata.annotations or {}):
            await asyncio.to_thread(refuse_approval, "JobRun", body, namespace, userinfo, None, "CREATE")
        if run.spec.ignore_singleton_lock and username not in trusted:
            allowed = await asyncio.to_thread(api().may, userinfo, FORCE_VERB, "jobruns", namespace, GROUP)
            _refuse(
                force_denial(
                    run, username=username, namespace=namespace, trusted=trusted, may_force=lambda: allowed
                )
            )
        ref = run.spec.inputs_secret_ref
        secret = await asyncio.to_thread(api().get_secret, namespace, ref) if ref else None

        def decide(definitions: list[JobDefinition], queue_exists: Any) -> Denial | None:
            return review_run(
                run,
                username=username,
                trusted=trusted,
                definitions=definitions,
                queue_exists=queue_exists,
                secret_exists=lambda name: secret is not None,
            )

        queues = kwargs["admission_queues"]
        definitions = list(kwargs["admission_definitions"].get(namespace, []))
        denial = decide(definitions, lambda queue: (namespace, queue) in queues)
        if denial is not None and denial.reason != "RequesterSpoofed":
            # The indexes may lag a moment behind a job enabled or a queue made just before: refuse only
            # on fresh data.
            def decide_on_fresh_data() -> Denial | None:
                fresh = [JobDefinition.model_validate(obj) for obj in api().list_job_definitions(namespace)]
                return decide(fresh, lambda queue: api().get_job_queue(namespace, queue) is not None)

            denial = await asyncio.to_thread(decide_on_fresh_data)
        if denial is not None:
            log.info("run refused namespace=%s reason=%s user=%s", namespace, denial.reason, username)
        _refuse(denial)

    # A schedule is runs made later on its author's behalf: the same checks as a run, on CREATE and on
    # every UPDATE that changes what its fires do, and a requester that follows who decided them.
    @kopf.on.mutate(
        GROUP, VERSION, "jobschedules", id=WEBHOOK_PATHS["mutating"]["jobschedules"],
        operations=["CREATE", "UPDATE"], registry=registry,
    )  # fmt: skip
    async def stamp_schedule_requester(
        body: Any, spec: Any, patch: kopf.Patch, userinfo: Any, **kwargs: Any
    ) -> None:
        stamp_approval(body, spec, patch, userinfo, kwargs.get("old"))
        spec = dict(spec or {})
        old = kwargs.get("old")
        old_spec = dict(old.get("spec") or {}) if old else None
        given = spec.get("requestedBy")
        stamped = schedule_requester(given, old_spec, spec, str(userinfo.get("username", "")), trusted)
        if stamped != given:
            patch.spec["requestedBy"] = stamped

    @kopf.on.validate(
        GROUP, VERSION, "jobschedules", id=WEBHOOK_PATHS["validating"]["jobschedules"],
        operations=["CREATE", "UPDATE"], registry=registry,
    )  # fmt: skip
    def validate_schedule(body: Any, namespace: str | None, userinfo: Any, **kwargs: Any) -> None:
        # Sync (kopf runs it in a thread): schedules are written rarely, and decided on fresh reads.
        schedule = JobSchedule.model_validate(copy.deepcopy(dict(body)))
        namespace = namespace or schedule.metadata.namespace or ""
        username = str(userinfo.get("username", ""))
        old = kwargs.get("old")
        operation = str(kwargs.get("operation") or "CREATE")
        refuse_approval("JobSchedule", dict(body), namespace, userinfo, old, operation)
        old_spec = dict(old.get("spec") or {}) if old else None
        denial = review_schedule(
            schedule,
            old_spec,
            username=username,
            trusted=trusted,
            definitions=[JobDefinition.model_validate(obj) for obj in api().list_job_definitions(namespace)],
            queue_exists=lambda queue: api().get_job_queue(namespace, queue) is not None,
            secret_exists=lambda name: api().get_secret(namespace, name) is not None,
            may_create_runs=lambda: api().may(userinfo, "create", "jobruns", namespace, group=GROUP),
        )
        if denial is not None:
            log.info("schedule refused namespace=%s reason=%s user=%s", namespace, denial.reason, username)
        _refuse(denial)

    def may_create_pods(kind: str, namespace: str | None, userinfo: Any, old: Any, new: Any) -> None:
        username = str(userinfo.get("username", ""))
        if username in trusted:
            return  # the API, which checks its own users' permissions (extras.gitrepository)
        if old is not None and new is not None and old.get("spec") == new.get("spec"):
            return  # labels, annotations (a sync request): nothing about the pods changes
        namespace = namespace or ""
        allowed = api().may(userinfo, "create", "pods", namespace)
        _refuse(pods_denial(kind, allowed, namespace, str(userinfo.get("username", ""))))

    # A queue's pod template shapes the pods the operator starts; a repository's code is imported in a
    # sync pod (and runs in job pods once enabled): starting pods, either way.
    @kopf.on.validate(
        GROUP, VERSION, "jobqueues", id=WEBHOOK_PATHS["validating"]["jobqueues"],
        operations=["CREATE", "UPDATE"], registry=registry,
    )  # fmt: skip
    @kopf.on.validate(
        GROUP, VERSION, "jobrepositories", id=WEBHOOK_PATHS["validating"]["jobrepositories"],
        operations=["CREATE", "UPDATE"], registry=registry,
    )  # fmt: skip
    def validate_pod_source(
        namespace: str | None, userinfo: Any, resource: kopf.Resource, **kwargs: Any
    ) -> None:
        may_create_pods(resource.kind or "", namespace, userinfo, kwargs.get("old"), kwargs.get("new"))

    @kopf.on.validate(
        GROUP, VERSION, "jobdefinitions", id=WEBHOOK_PATHS["validating"]["jobdefinitions"],
        operations=["CREATE", "UPDATE"], registry=registry,
    )  # fmt: skip
    def validate_definition(spec: Any, namespace: str | None, warnings: list[str], **kwargs: Any) -> None:
        # A queue named before it exists is fine (GitOps applies in any order), but said.
        queues = kwargs["admission_queues"]
        for queue in ((spec or {}).get("overrides") or {}).get("taskQueues") or []:
            if (namespace, queue) not in queues and queue != "default":
                warnings.append(f"JobQueue {queue!r} does not exist (yet) in namespace {namespace!r}")

    return registry
