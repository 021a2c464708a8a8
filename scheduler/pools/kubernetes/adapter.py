"""`KubernetesPool`: one GPU node pool of one Kubernetes cluster, as a federation pool.

    snapshot()     GET nodes (node selector) + GET pods of all namespaces not yet ended
    submit()       POST Secret, ConfigMap, Service, then the Job; PATCH the three to be owned
                   by the Job (names from the tag)
    find()         GET jobs by the tag's labels
    poll()         GET jobs and pods with sfed labels in the namespace: two calls for any count
    cancel()       DELETE Job (propagationPolicy Foreground), its Secret, ConfigMap, Service
    read_output()  the log of the job's first pod (the batch script's stdout and stderr),
                   followed by one streaming GET per job into a spool file (see logs.py)

The Job comes last, so a Job that exists has what its pods need: a crash or a timeout part
way leaves at most a Secret, ConfigMap or Service without their Job (removed at once when the
Job was refused; otherwise small, labelled leftovers), never pods that wait forever or a job
that runs twice. Submission is safe to repeat: the names come from the remote tag, so a
second attempt meets the first ("409 AlreadyExists") and adopts it after checking that it
carries the same tag. A crash between the Job and the owner patches leaves the companions
without an owner: cancel deletes them by name, Kubernetes' TTL does not.

The remote id is the Job's name.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import structlog

from scheduler.config import KubernetesPoolConfig
from scheduler.domain import (
    Job,
    NodeSnapshot,
    OutputPaths,
    RemoteJob,
    RemoteSubmission,
    RemoteTag,
)
from scheduler.pools.base import PoolError, PoolUnreachable
from scheduler.pools.kubernetes import capacity, manifests, names, status
from scheduler.pools.kubernetes.client import KubeApi, KubeRefused
from scheduler.pools.kubernetes.logs import LogTails

__all__ = ["POD_LOG", "KubernetesPool"]

# The output "path" of a job on a Kubernetes pool: the log of its first pod, read by job id.
POD_LOG = "(pod log)"

_LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"


class _Verbs(NamedTuple):
    """The client calls for one kind of object in a namespace."""

    create: Any
    read: Any
    patch: Any
    delete: Any


class KubernetesPool:
    """A `Pool` over the nodes of one Kubernetes cluster that match the pool's selector."""

    def __init__(
        self, config: KubernetesPoolConfig, *, timeout: float = 30.0, api: KubeApi | None = None
    ) -> None:
        self.name = config.name
        self.config = config
        self.namespace = config.namespace
        self.api = api or KubeApi(config, timeout=timeout)
        core, batch = self.api.core, self.api.batch
        self._verbs = {
            "Job": _Verbs(
                batch.create_namespaced_job,
                batch.read_namespaced_job,
                batch.patch_namespaced_job,
                batch.delete_namespaced_job,
            ),
            "Secret": _Verbs(
                core.create_namespaced_secret,
                core.read_namespaced_secret,
                core.patch_namespaced_secret,
                core.delete_namespaced_secret,
            ),
            "ConfigMap": _Verbs(
                core.create_namespaced_config_map,
                core.read_namespaced_config_map,
                core.patch_namespaced_config_map,
                core.delete_namespaced_config_map,
            ),
            "Service": _Verbs(
                core.create_namespaced_service,
                core.read_namespaced_service,
                core.patch_namespaced_service,
                core.delete_namespaced_service,
            ),
        }
        self._runtime = manifests.runtime_files()
        self._tails = LogTails(
            self.api.core, self.namespace, manifests.CONTAINER, connect_timeout=timeout
        )
        self._log = structlog.get_logger(pool=config.name)

    def __repr__(self) -> str:
        return f"KubernetesPool({self.name!r}, {self.api.server}, namespace={self.namespace!r})"

    # -- plumbing ----------------------------------------------------------------------------

    def _error(self, what: str, exc: KubeRefused) -> PoolError:
        return PoolError(f"{self.name}: {what}: {exc.message or exc.reason} ({exc.status})")

    async def _get(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A read that may find nothing (404 -> None)."""
        try:
            result: dict[str, Any] = await self.api.call(method, *args, **kwargs)
        except KubeRefused as exc:
            if exc.status == 404:
                return None
            raise self._error(f"{getattr(method, '__name__', 'read')}", exc) from None
        return result

    async def _list(self, method: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        result = await self._get(method, *args, **kwargs)
        if result is None:
            raise PoolError(f"{self.name}: namespace {self.namespace!r} not found")
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    async def _create(self, kind: str, body: Mapping[str, Any], tag: RemoteTag) -> dict[str, Any]:
        """Create `body`, or adopt the object of that name when it carries the same tag."""
        name = body["metadata"]["name"]
        try:
            created: dict[str, Any] = await self.api.call(
                self._verbs[kind].create, self.namespace, body, field_validation="Strict"
            )
            return created
        except KubeRefused as exc:
            if exc.status != 409:
                self._log.warning("kube.create_refused", kind=kind, name=name, error=str(exc))
                raise self._error(f"cannot create {kind} {name}", exc) from None
        existing = await self._get(self._verbs[kind].read, name, self.namespace)
        if existing is None:  # deleted in between: let the next pass try again
            raise PoolUnreachable(f"{self.name}: {kind} {name} vanished while created")
        if names.tag_of(existing.get("metadata") or {}) != tag:
            raise PoolError(f"{self.name}: {kind} {name} exists and is not {tag.render()}'s")
        self._log.info("kube.adopted", kind=kind, name=name)
        return existing

    async def _pods(self, selector: str) -> list[dict[str, Any]]:
        return await self._list(
            self.api.core.list_namespaced_pod, self.namespace, label_selector=selector
        )

    # -- Pool --------------------------------------------------------------------------------

    async def snapshot(self) -> tuple[NodeSnapshot, ...]:
        selector = ",".join(f"{k}={v}" for k, v in self.config.node_selector.items())
        nodes = await self._list(self.api.core.list_node, label_selector=selector)
        if not nodes:
            raise PoolError(f"{self.name}: no node matches the node selector {selector!r}")
        pods = await self._list(
            self.api.core.list_pod_for_all_namespaces, field_selector=_LIVE_PODS
        )
        try:
            snapshot = capacity.node_snapshots(
                nodes,
                pods,
                gpu_resource=self.config.gpu_resource,
                tolerations=self.config.tolerations,
                labels=capacity.NodeLabels.of(self.config),
            )
        except (capacity.QuantityError, KeyError) as exc:
            raise PoolError(f"{self.name}: unreadable node or pod: {exc}") from exc
        self._log.debug(
            "kube.snapshot",
            nodes=len(snapshot),
            schedulable=sum(n.schedulable for n in snapshot),
            gpus_free=sum(n.gpus_free for n in snapshot if n.schedulable),
        )
        return snapshot

    async def submit(self, submission: RemoteSubmission) -> str:
        tag = submission.tag
        try:
            objects = manifests.build(
                submission, self.config, secrets.token_hex(16), runtime=self._runtime
            )
        except ValueError as exc:
            raise PoolError(f"{self.name}: cannot submit {tag.render()}: {exc}") from exc
        if objects.dropped_env:
            self._log.warning("kube.env_dropped", tag=tag.render(), names=objects.dropped_env)
        created: list[str] = []
        try:
            # An adopted Secret keeps the first submission's token: the pods of an adopted Job
            # read whatever the Secret holds, so agents and srun always agree.
            for kind, body in objects.companions():
                await self._create(kind, body, tag)
                created.append(kind)
            job = await self._create("Job", objects.job, tag)
        except PoolError:
            await self._remove(objects.name, created)  # no Job was made: nothing will use them
            raise
        patch = manifests.owner_patch(job)
        for kind, _ in objects.companions():
            try:
                await self.api.call(
                    self._verbs[kind].patch,
                    objects.name,
                    self.namespace,
                    patch,
                    _content_type="application/merge-patch+json",
                )
            except KubeRefused as exc:  # the job runs; only the clean-up by Kubernetes is lost
                self._log.warning("kube.owner_patch_refused", kind=kind, error=str(exc))
        self._log.info("kube.submit", tag=tag.render(), remote_id=objects.name)
        return objects.name

    async def _remove(self, name: str, kinds: Sequence[str]) -> None:
        """Best-effort deletion of the named companions (Secret, ConfigMap, Service)."""
        for kind in kinds:
            try:
                await self.api.call(self._verbs[kind].delete, name, self.namespace)
            except (KubeRefused, PoolUnreachable) as exc:
                self._log.warning("kube.cleanup_failed", kind=kind, name=name, error=str(exc))

    async def find(self, tag: RemoteTag) -> RemoteJob | None:
        jobs = await self._list(
            self.api.batch.list_namespaced_job,
            self.namespace,
            label_selector=names.tag_selector(tag),
        )
        jobs = [j for j in jobs if names.tag_of(j.get("metadata") or {}) == tag]
        if not jobs:
            return None
        job = jobs[0]
        name = job["metadata"]["name"]
        pods = await self._pods(f"{names.JOB_LABEL}={name}")
        return self._state(job, pods)

    def _state(self, job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> RemoteJob:
        try:
            return status.remote_job(job, pods)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            name = (job.get("metadata") or {}).get("name")
            raise PoolError(f"{self.name}: cannot read the state of Job {name}: {exc!r}") from exc

    async def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteJob]:
        if not remote_ids:
            return {}
        jobs = await self._list(
            self.api.batch.list_namespaced_job, self.namespace, label_selector=names.JOB_ID_LABEL
        )
        pods = await self._pods(names.JOB_LABEL)
        by_job: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            owner = ((pod.get("metadata") or {}).get("labels") or {}).get(names.JOB_LABEL)
            by_job.setdefault(str(owner), []).append(pod)
        known = {j["metadata"]["name"]: j for j in jobs}
        # A Job that is gone is left out, as the contract says: the cluster cannot tell one
        # deleted with kubectl (or by its TTL) from one never made; the loop calls it lost.
        result = {
            remote_id: self._state(known[remote_id], by_job.get(remote_id, []))
            for remote_id in remote_ids
            if remote_id in known
        }
        self._log.debug("kube.poll", asked=len(remote_ids), found=len(known))
        return result

    async def signal(self, remote_id: str, signal: str, *, batch_only: bool) -> None:
        # The pods' processes can be reached only through exec, which this adapter does not use.
        raise PoolError(f"{self.name}: Kubernetes pools cannot signal a running job (only end it)")

    async def cancel(self, remote_id: str) -> None:
        for kind, verbs in self._verbs.items():  # the Job first: its pods stop first
            try:
                await self.api.call(
                    verbs.delete, remote_id, self.namespace, propagation_policy="Foreground"
                )
            except KubeRefused as exc:
                if exc.status != 404:
                    raise self._error(f"cannot delete {kind} {remote_id}", exc) from None
        self._log.info("kube.cancel", remote_id=remote_id)

    def environment_left_out(self, submission: RemoteSubmission) -> Mapping[str, str]:
        return manifests.left_out(submission, self.config)

    def output_paths(self, job: Job, attempt: int, remote_id: str | None) -> OutputPaths:
        return OutputPaths(stdout=POD_LOG, stderr=None)  # both streams in the first pod's log

    async def read_output(
        self, path: str, offset: int, limit: int, *, remote_id: str = ""
    ) -> bytes:
        if offset < 0 or limit < 0:
            raise PoolError(f"{self.name}: offset and limit must not be negative")
        if not remote_id:
            raise PoolError(f"{self.name}: output is read by job, and no job was named")
        if limit == 0:
            return b""
        # Pod 0 by its index (label since Kubernetes 1.28, annotation before).
        pods = [
            p
            for p in await self._pods(f"{names.JOB_LABEL}={remote_id}")
            if status.pod_index(p) == 0
        ]
        pod: str | None = None
        ended = False
        if pods:
            newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
            state = status.container_state(newest)
            if not (state.get("running") or state.get("terminated")):
                return b""  # no log before the container starts
            pod = newest["metadata"]["name"]
            ended = bool(state.get("terminated"))
        try:
            chunk = await asyncio.to_thread(
                self._tails.read, remote_id, pod, offset, limit, ended=ended
            )
        except OSError as exc:
            raise PoolError(f"{self.name}: cannot keep the log of {remote_id}: {exc}") from exc
        self._log.debug("kube.read_output", remote_id=remote_id, offset=offset, size=len(chunk))
        return chunk

    async def close(self) -> None:
        await asyncio.to_thread(self._tails.close)
        await self.api.close()
