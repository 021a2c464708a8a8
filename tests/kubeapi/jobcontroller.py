"""The Job controller: pods per index, status counting through the job-tracking finalizer,
success and failure conditions, deadlines, and the TTL-after-finished controller."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from tests.kubeapi.defaults import default_pod
from tests.kubeapi.store import Obj, Store, now_rfc3339, random_suffix

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def _indexes_to_str(indexes: set[int]) -> str:
    """Compressed interval form, as in status.completedIndexes ("0-2,4")."""
    parts, ordered, i = [], sorted(indexes), 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _str_to_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


def _condition(job: Obj, ctype: str) -> dict[str, Any] | None:
    for c in job["status"].get("conditions") or []:
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


def _add_condition(job: Obj, ctype: str, reason: str, message: str) -> None:
    stamp = now_rfc3339()
    job["status"].setdefault("conditions", []).append(
        {
            "type": ctype,
            "status": "True",
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
    )


def finished(job: Obj) -> dict[str, Any] | None:
    return _condition(job, "Complete") or _condition(job, "Failed")


class JobController:
    def __init__(self, store: Store, delete: Callable[[str, Obj, str, int | None], None]) -> None:
        self.store = store
        self.delete = delete
        self.started: dict[str, float] = {}  # job uid -> monotonic start, for activeDeadlineSeconds
        self.finished_at: dict[str, float] = {}  # job uid -> monotonic finish, for the TTL

    def reconcile(self) -> bool:
        changed = self._count_terminated_pods()
        for job in self.store.list("Job"):
            if job["metadata"].get("deletionTimestamp"):
                continue
            before = copy.deepcopy(job["status"])
            self._sync(job)
            if job["status"] != before:
                self.store.touch(job)
                changed = True
            changed |= self._expire(job)
        return changed

    def _pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return [
            p
            for p in self.store.list("Pod", job["metadata"]["namespace"])
            if any(
                r.get("uid") == uid and r.get("controller")
                for r in p["metadata"].get("ownerReferences") or []
            )
        ]

    def _count_terminated_pods(self) -> bool:
        """Count each finished pod once into its Job's status, then release its finalizer."""
        changed = False
        for pod in self.store.list("Pod"):
            meta = pod["metadata"]
            if TRACKING not in (meta.get("finalizers") or []):
                continue
            phase = pod["status"].get("phase")
            gone_without_phase = meta.get("deletionTimestamp") and phase not in (
                "Succeeded",
                "Failed",
            )
            if phase not in ("Succeeded", "Failed") and not gone_without_phase:
                continue
            if gone_without_phase and pod["spec"].get("nodeName") and pod["status"].get("podIP"):
                continue  # the kubelet is still terminating it and will set its phase
            owner = next(
                (r for r in meta.get("ownerReferences") or [] if r.get("controller")), None
            )
            job = self._job_by_uid(meta["namespace"], owner["uid"]) if owner else None
            if job is not None and not finished(job):
                status = job["status"]
                if phase == "Succeeded":
                    status["succeeded"] = status.get("succeeded", 0) + 1
                    if job["spec"]["completionMode"] == "Indexed":
                        done = _str_to_indexes(status.get("completedIndexes"))
                        done.add(int(meta["annotations"][INDEX_KEY]))
                        status["completedIndexes"] = _indexes_to_str(done)
                else:
                    status["failed"] = status.get("failed", 0) + 1
                    _apply_pod_failure_policy(job, pod)
                self.store.touch(job)
            meta["finalizers"].remove(TRACKING)
            if not meta["finalizers"]:
                del meta["finalizers"]
            self.store.touch(pod)
            changed = True
        return changed

    def _job_by_uid(self, namespace: str, uid: str) -> Obj | None:
        return next(
            (j for j in self.store.list("Job", namespace) if j["metadata"]["uid"] == uid), None
        )

    def _sync(self, job: Obj) -> None:
        spec, status, uid = job["spec"], job["status"], job["metadata"]["uid"]
        pods = self._pods(job)
        active = [
            p
            for p in pods
            if p["status"].get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p
            for p in pods
            if p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") not in ("Succeeded", "Failed")
        ]
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        status["terminating"] = len(terminating)
        status.setdefault("succeeded", 0)
        status.setdefault("failed", 0)
        status.setdefault("uncountedTerminatedPods", {})
        if finished(job):
            return
        if spec.get("suspend"):
            if not _condition(job, "Suspended"):
                _add_condition(job, "Suspended", "JobSuspended", "Job suspended")
            return
        if "startTime" not in status:
            status["startTime"] = now_rfc3339()
            self.started[uid] = time.monotonic()
        indexed = spec["completionMode"] == "Indexed"
        completions = spec.get("completions")
        done = _str_to_indexes(status.get("completedIndexes")) if indexed else set()
        succeeded = len(done) if indexed else status["succeeded"]
        target = _condition(job, "FailureTarget") or _condition(job, "SuccessCriteriaMet")
        if target is None:
            deadline = spec.get("activeDeadlineSeconds")
            if status["failed"] > spec["backoffLimit"]:
                _add_condition(
                    job,
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
            elif (
                deadline is not None
                and time.monotonic() - self.started.get(uid, time.monotonic()) >= deadline
            ):
                _add_condition(
                    job,
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
            elif (completions is not None and succeeded >= completions) or (
                completions is None and status["succeeded"] > 0 and not active
            ):
                _add_condition(
                    job,
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
            target = _condition(job, "FailureTarget") or _condition(job, "SuccessCriteriaMet")
        if target is not None:
            for p in active:
                self.delete("Pod", p, "Background", None)
            if active or terminating:
                return
            if target["type"] == "FailureTarget":
                _add_condition(job, "Failed", target["reason"], target["message"])
            else:
                _add_condition(job, "Complete", target["reason"], target["message"])
                status["completionTime"] = now_rfc3339()
            self.finished_at[uid] = time.monotonic()
            status["ready"] = 0
            return
        self._create_pods(job, active, done)

    def _create_pods(self, job: Obj, active: list[Obj], done: set[int]) -> None:
        spec = job["spec"]
        parallelism = spec.get("parallelism", 1)
        if spec["completionMode"] == "Indexed":
            running = {int(p["metadata"]["annotations"][INDEX_KEY]) for p in active}
            for index in range(spec["completions"]):
                if len(active) >= parallelism:
                    break
                if index not in done and index not in running:
                    active.append(self._create_pod(job, index))
        else:
            completions = spec.get("completions") or parallelism
            want = min(parallelism, completions - job["status"]["succeeded"]) - len(active)
            for _ in range(max(want, 0)):
                active.append(self._create_pod(job, None))

    def _create_pod(self, job: Obj, index: int | None) -> Obj:
        jmeta = job["metadata"]
        template = copy.deepcopy(job["spec"]["template"])
        tmeta = template.get("metadata") or {}
        name = jmeta["name"] + (f"-{index}" if index is not None else "") + "-" + random_suffix()
        meta: dict[str, Any] = {
            "name": name,
            "namespace": jmeta["namespace"],
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": jmeta["name"],
                    "uid": jmeta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": [TRACKING],
        }
        spec = template["spec"]
        if index is not None:
            meta["labels"][INDEX_KEY] = str(index)
            meta["annotations"][INDEX_KEY] = str(index)
            spec.setdefault("hostname", f"{jmeta['name']}-{index}")
            for c in (spec.get("initContainers") or []) + spec["containers"]:
                c.setdefault("env", []).append(
                    {
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {
                            "fieldRef": {
                                "apiVersion": "v1",
                                "fieldPath": f"metadata.labels['{INDEX_KEY}']",
                            }
                        },
                    }
                )
        if not meta["annotations"]:
            del meta["annotations"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        default_pod(pod)
        return self.store.add("Pod", pod)

    def _expire(self, job: Obj) -> bool:
        """The TTL-after-finished controller: delete finished Jobs once their TTL passed."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        at = self.finished_at.get(job["metadata"]["uid"])
        if ttl is None or at is None or time.monotonic() - at < ttl:
            return False
        self.delete("Job", job, "Foreground", None)
        return True


def _pod_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod["status"].get("conditions") or []
    )


def _apply_pod_failure_policy(job: Obj, pod: Obj) -> None:
    """spec.podFailurePolicy for a failed pod: the first matching rule decides (the subset of
    onPodConditions rules with action FailJob; Ignore and Count leave the failure counted)."""
    policy = job["spec"].get("podFailurePolicy") or {}
    conditions = {
        (c.get("type"), c.get("status")) for c in (pod.get("status") or {}).get("conditions") or []
    }
    for index, rule in enumerate(policy.get("rules") or []):
        for match in rule.get("onPodConditions") or []:
            if (match.get("type"), match.get("status", "True")) not in conditions:
                continue
            if rule.get("action") == "FailJob" and not _condition(job, "FailureTarget"):
                meta = pod["metadata"]
                _add_condition(
                    job,
                    "FailureTarget",
                    "PodFailurePolicy",
                    f"Pod {meta['namespace']}/{meta['name']} has condition {match['type']} "
                    f"matching FailJob rule at index {index}",
                )
            return
