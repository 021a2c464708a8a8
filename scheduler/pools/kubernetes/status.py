"""A federation attempt's state from its Job and pods. Pure.

Job condition Complete                      COMPLETED, exit 0                   outcome COMPLETED
Job condition Failed / FailureTarget        FAILED, the failed container's exit code;
                                                                                FAILED
  a container OOMKilled                                                         OUT_OF_MEMORY
  a pod preempted by the scheduler          FAILED "preempted: ..."             PREEMPTED
  a pod evicted or otherwise disrupted (the Job's podFailurePolicy rule on DisruptionTarget,
  or a pod still showing DisruptionTarget / reason Evicted)
                                            FAILED "preempted: ..."             EVICTED
  reason DeadlineExceeded                   FAILED "time limit reached"         TIMEOUT
Job being deleted                           CANCELLED (someone deleted it on    CANCELLED
                                            the cluster)
Job gone                                    left out of poll: the loop records the attempt LOST
first pod's container running, every pod   RUNNING
  bound to a node
otherwise                                   PENDING, with the scheduler's or kubelet's word
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from scheduler.domain import AttemptState, Outcome, RemoteJob
from scheduler.pools.kubernetes import names

__all__ = ["container_state", "pod_index", "remote_job"]

_DISRUPTIONS = {
    "PreemptionByScheduler": (Outcome.PREEMPTED, "preempted by a higher-priority pod"),
    "EvictionByEvictionAPI": (Outcome.EVICTED, "evicted (Eviction API: drain or autoscaler)"),
    "DeletionByTaintManager": (Outcome.EVICTED, "evicted: its node got a NoExecute taint"),
    "TerminationByKubelet": (Outcome.EVICTED, "evicted by the kubelet (node pressure or shutdown)"),
}


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _condition(obj: Mapping[str, Any], kind: str, status: str = "True") -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind and cond.get("status") == status:
            return dict(cond)
    return None


def pod_index(pod: Mapping[str, Any]) -> int | None:
    """The pod's completion index: the label (Kubernetes >= 1.28) or the annotation."""
    meta = pod.get("metadata") or {}
    for where in ("labels", "annotations"):
        value = (meta.get(where) or {}).get(names.INDEX_LABEL, "")
        if str(value).isdigit():
            return int(value)
    return None


def _index(pod: Mapping[str, Any]) -> int:
    index = pod_index(pod)
    return 1 << 30 if index is None else index


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return statuses[0] if statuses else {}


def container_state(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The job container's state: {"waiting": ...}, {"running": ...} or {"terminated": ...}."""
    state = _container(pod).get("state")
    return state if isinstance(state, Mapping) else {}


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    term = container_state(pod).get("terminated")
    return term if isinstance(term, Mapping) else None


def _started(pod: Mapping[str, Any]) -> datetime | None:
    """When the job container started, running or since ended."""
    state = container_state(pod)
    for phase in ("running", "terminated"):
        at = _time((state.get(phase) or {}).get("startedAt"))
        if at is not None:
            return at
    return None


def _disruption(pods: Sequence[Mapping[str, Any]]) -> tuple[Outcome, str] | None:
    """How and why a pod of the job was taken away, or None when none was."""
    for pod in pods:
        name = pod["metadata"]["name"]
        cond = _condition(pod, "DisruptionTarget")
        if cond is not None:
            outcome, what = _DISRUPTIONS.get(
                str(cond.get("reason")), (Outcome.EVICTED, f"disrupted ({cond.get('reason')})")
            )
            return outcome, f"preempted: pod {name} {what}"
        if (pod.get("status") or {}).get("reason") == "Evicted":
            message = (pod.get("status") or {}).get("message", "")
            return Outcome.EVICTED, f"preempted: pod {name} evicted by the kubelet" + (
                f" ({message})" if message else ""
            )
    return None


def _oom_killed(pods: Sequence[Mapping[str, Any]]) -> bool:
    return any((_terminated(p) or {}).get("reason") == "OOMKilled" for p in pods)


def _exit_code(pods: Sequence[Mapping[str, Any]]) -> int | None:
    """The batch script's exit code (pod 0), else the first failed pod's."""
    ended = [(p, t) for p in pods if (t := _terminated(p)) is not None]
    for pod, term in ended:
        if _index(pod) == 0 and term.get("exitCode") not in (None, 0):
            return int(term["exitCode"])
    for _, term in ended:
        if term.get("exitCode") not in (None, 0):
            return int(term["exitCode"])
    return None


def _waiting(pods: Sequence[Mapping[str, Any]]) -> str:
    """The scheduler's or the kubelet's word on why the job has not started."""
    for pod in pods:
        cond = _condition(pod, "PodScheduled", "False")
        if cond is not None:
            return f"{cond.get('reason', 'Unschedulable')}: {cond.get('message', '')}".strip(" :")
    for pod in pods:
        waiting = container_state(pod).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason != "ContainerCreating":
            return f"{reason}: {waiting.get('message', '')}".strip(" :")
    return "starting pods" if pods else "creating pods"


def remote_job(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> RemoteJob:
    """The attempt's state from its Job and the pods Kubernetes made for it."""
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    pods = sorted(pods, key=_index)
    tag = names.tag_of(meta)
    nodelist = ",".join(
        dict.fromkeys(n for p in pods if (n := (p.get("spec") or {}).get("nodeName")))
    )
    started = min((t for p in pods if (t := _started(p)) is not None), default=None)
    common: dict[str, Any] = {"tag": tag, "nodelist": nodelist, "started_at": started}
    name = str(meta.get("name", ""))

    if _condition(job, "Complete") is not None:
        return RemoteJob(
            name,
            AttemptState.COMPLETED,
            exit_code=0,
            ended_at=_time(status.get("completionTime")),
            **common,
        )
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is not None:
        ended = _time(failed.get("lastTransitionTime"))
        message = str(failed.get("message", ""))
        disrupted = _disruption(pods)
        if disrupted is not None:
            outcome, reason = disrupted
        elif failed.get("reason") == "PodFailurePolicy" and "DisruptionTarget" in message:
            outcome, reason = Outcome.EVICTED, f"preempted: {message}"
        elif failed.get("reason") == "DeadlineExceeded":
            outcome, reason = Outcome.TIMEOUT, "time limit reached"
        else:
            outcome = Outcome.OUT_OF_MEMORY if _oom_killed(pods) else Outcome.FAILED
            reason = f"failed ({failed.get('reason')}: {failed.get('message', '')})".replace(
                ": )", ")"
            )
        return RemoteJob(
            name,
            AttemptState.FAILED,
            exit_code=_exit_code(pods),
            reason=reason,
            ended_at=ended,
            outcome=outcome,
            **common,
        )
    if meta.get("deletionTimestamp"):
        return RemoteJob(
            name,
            AttemptState.CANCELLED,
            reason="the Job is being deleted",
            ended_at=_time(meta.get("deletionTimestamp")),
            **common,
        )
    # Running as Slurm means it: the batch script started and no node of the job is missing.
    first = pods[0] if pods else None
    if (
        first is not None
        and _index(first) == 0
        and container_state(first).get("running")
        and all((p.get("spec") or {}).get("nodeName") for p in pods)
        and len({_index(p) for p in pods}) >= ((job.get("spec") or {}).get("completions") or 1)
    ):
        return RemoteJob(name, AttemptState.RUNNING, **common)
    return RemoteJob(name, AttemptState.PENDING, reason=_waiting(pods), **common)
