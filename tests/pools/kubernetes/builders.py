"""Builders of Kubernetes API documents (plain camelCase dicts, as the API server returns them).

Each builder fills what a real API server would and lets a test name only what it is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.domain import RemoteTag
from scheduler.pools.kubernetes import names

NAMESPACE = "sfed"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"
T2 = "2024-05-01T11:00:00Z"
T3 = "2024-05-01T11:30:00Z"


def condition(
    kind: str,
    status: str = "True",
    *,
    reason: str | None = None,
    message: str | None = None,
    at: str = T0,
) -> dict[str, Any]:
    """One entry of status.conditions (Node, Pod or Job); None fields are left out, as the API
    server leaves out empty strings."""
    cond: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": at}
    if reason is not None:
        cond["reason"] = reason
    if message is not None:
        cond["message"] = message
    return cond


# --- nodes -----------------------------------------------------------------------------------


def taint(key: str, effect: str = "NoSchedule", value: str | None = None) -> dict[str, Any]:
    """A node taint; the API server omits an empty value."""
    out: dict[str, Any] = {"key": key, "effect": effect}
    if value is not None:
        out["value"] = value
    return out


def node(
    name: str,
    *,
    gpus: str | None = "8",
    cpu: str = "7500m",
    memory: str = "32Gi",
    gpu_resource: str = "nvidia.com/gpu",
    ready: str | None = "True",
    unschedulable: bool = False,
    taints: Sequence[Mapping[str, Any]] = (),
    capacity_gpus: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Node. `ready=None` leaves out the Ready condition; `gpus=None` the GPU resource;
    `labels` are added to (or replace) the usual ones."""
    allocatable: dict[str, Any] = {
        "cpu": cpu,
        "ephemeral-storage": "95500736762",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": "110",
    }
    capacity = {**allocatable, "cpu": "8", "memory": "33554432Ki"}
    if gpus is not None:
        allocatable[gpu_resource] = gpus
        capacity[gpu_resource] = capacity_gpus if capacity_gpus is not None else gpus
    conditions = [
        condition("MemoryPressure", "False", reason="KubeletHasSufficientMemory"),
        condition("DiskPressure", "False", reason="KubeletHasNoDiskPressure"),
        condition("PIDPressure", "False", reason="KubeletHasSufficientPID"),
    ]
    if ready is not None:
        conditions.append(
            condition(
                "Ready",
                ready,
                reason="KubeletReady" if ready == "True" else "KubeletNotReady",
                message="kubelet is posting ready status"
                if ready == "True"
                else "container runtime network not ready",
            )
        )
    spec: dict[str, Any] = {"podCIDR": "10.244.1.0/24", "providerID": f"kind://docker/{name}"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "1042",
            "creationTimestamp": T0,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                **(labels or {}),
            },
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": conditions,
            "nodeInfo": {
                "kubeletVersion": "v1.31.0",
                "containerRuntimeVersion": "containerd://1.7",
            },
        },
    }


# --- pods ------------------------------------------------------------------------------------


def container(
    name: str = "main",
    *,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A container of a pod spec."""
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = dict(requests)
    if limits is not None:
        resources["limits"] = dict(limits)
    return {
        "name": name,
        "image": "nvcr.io/nvidia/pytorch:24.04-py3",
        "resources": resources,
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def running(started_at: str = T1) -> dict[str, Any]:
    """containerStatuses[].state of a running container."""
    return {"running": {"startedAt": started_at}}


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    """containerStatuses[].state of a waiting container."""
    out: dict[str, Any] = {"reason": reason}
    if message is not None:
        out["message"] = message
    return {"waiting": out}


def terminated(
    exit_code: int, *, started_at: str = T1, finished_at: str = T2, reason: str | None = None
) -> dict[str, Any]:
    """containerStatuses[].state of an ended container."""
    return {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "startedAt": started_at,
            "finishedAt": finished_at,
            "containerID": "containerd://0123456789abcdef",
        }
    }


def pod(
    job_name: str = "alpha-7-1",
    index: int | None = 0,
    *,
    node_name: str | None = "gpu-a",
    phase: str | None = None,
    state: Mapping[str, Any] | None = None,
    containers: Sequence[Mapping[str, Any]] | None = None,
    init_containers: Sequence[Mapping[str, Any]] = (),
    conditions: Sequence[Mapping[str, Any]] | None = None,
    namespace: str = NAMESPACE,
    reason: str | None = None,
    message: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A pod of the Indexed Job `job_name` (index None: a pod without the index label).

    `state` is the first container's state (running(), waiting(), terminated()); the phase and
    conditions follow from it and from `node_name` unless given.
    """
    pod_name = name or f"{job_name}-{index if index is not None else 'x'}-abcde"
    labels = {
        "batch.kubernetes.io/controller-uid": "5f0c6a2e-uid",
        "batch.kubernetes.io/job-name": job_name,
        "controller-uid": "5f0c6a2e-uid",
        "job-name": job_name,
        names.JOB_LABEL: job_name,
    }
    annotations: dict[str, str] = {}
    if index is not None:
        labels[names.INDEX_LABEL] = str(index)
        annotations[names.INDEX_LABEL] = str(index)
    spec: dict[str, Any] = {
        "containers": [dict(c) for c in containers]
        if containers is not None
        else [container(requests={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "8"})],
        "restartPolicy": "Never",
        "hostname": f"{job_name}-{index}",
        "subdomain": job_name,
        "schedulerName": "default-scheduler",
    }
    if init_containers:
        spec["initContainers"] = [dict(c) for c in init_containers]
    if node_name is not None:
        spec["nodeName"] = node_name
    if phase is None:
        if state and "running" in state:
            phase = "Running"
        elif state and "terminated" in state:
            phase = "Succeeded" if state["terminated"]["exitCode"] == 0 else "Failed"
        else:
            phase = "Pending"
    if conditions is None:
        scheduled = node_name is not None
        conditions = [condition("PodScheduled", "True" if scheduled else "False")]
        if not scheduled:
            conditions = [
                condition(
                    "PodScheduled",
                    "False",
                    reason="Unschedulable",
                    message="0/4 nodes are available: 4 Insufficient nvidia.com/gpu. "
                    "preemption: 0/4 nodes are available: 4 No preemption victims found.",
                )
            ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [dict(c) for c in conditions],
        "qosClass": "Burstable",
    }
    if node_name is not None:
        status["hostIP"] = "172.18.0.3"
        status["startTime"] = T0
    if state is not None:
        status["containerStatuses"] = [
            {
                "name": "main",
                "image": "nvcr.io/nvidia/pytorch:24.04-py3",
                "imageID": "",
                "ready": "running" in state,
                "restartCount": 0,
                "started": "running" in state,
                "lastState": {},
                "state": dict(state),
            }
        ]
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": namespace,
            "uid": f"uid-{pod_name}",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "controller": True}
            ],
        },
        "spec": spec,
        "status": status,
    }


# --- jobs ------------------------------------------------------------------------------------

TAG = RemoteTag("alpha", 7, 1)


def job(
    name: str = "alpha-7-1",
    *,
    tag: RemoteTag | None = TAG,
    conditions: Sequence[Mapping[str, Any]] = (),
    completion_time: str | None = None,
    deletion_timestamp: str | None = None,
    nodes: int = 2,
) -> dict[str, Any]:
    """An Indexed Job of the federation, as the API server returns it."""
    annotations = {names.JOB_NAME_ANNOTATION: "train"}
    labels: dict[str, str] = {}
    if tag is not None:
        annotations[names.TAG_ANNOTATION] = tag.render()
        labels = names.tag_labels(tag)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": "5f0c6a2e-uid",
        "resourceVersion": "2077",
        "generation": 1,
        "creationTimestamp": T0,
        "labels": labels,
        "annotations": annotations,
    }
    if deletion_timestamp is not None:
        metadata["deletionTimestamp"] = deletion_timestamp
        metadata["finalizers"] = ["foregroundDeletion"]
    status: dict[str, Any] = {"startTime": T0, "uncountedTerminatedPods": {}, "ready": 0}
    if conditions:
        status["conditions"] = [dict(c) for c in conditions]
    if completion_time is not None:
        status["completionTime"] = completion_time
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completions": nodes,
            "parallelism": nodes,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "suspend": False,
            "podReplacementPolicy": "TerminatingOrFailed",
            "template": {"metadata": {"labels": {names.JOB_LABEL: name}}, "spec": {}},
        },
        "status": status,
    }


def complete(at: str = T2) -> list[dict[str, Any]]:
    """The conditions of a Job that succeeded (Kubernetes >= 1.31 sets both)."""
    return [
        condition(
            "SuccessCriteriaMet",
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
            at=at,
        ),
        condition(
            "Complete",
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
            at=at,
        ),
    ]


def failed(
    reason: str = "BackoffLimitExceeded",
    message: str = "Job has reached the specified backoff limit",
    *,
    at: str = T3,
    kind: str = "Failed",
) -> list[dict[str, Any]]:
    """The conditions of a Job that failed (kind "FailureTarget": failing, pods terminating)."""
    return [condition(kind, reason=reason, message=message, at=at)]
