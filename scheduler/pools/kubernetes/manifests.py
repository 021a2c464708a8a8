"""The Kubernetes objects of one federation job. Pure: dicts as the API server takes them.

One attempt of a job on N nodes with G GPUs each becomes:

- an Indexed Job, completions = parallelism = N, backoffLimit 0 (a failed node fails the job,
  as in Slurm), one pod per Kubernetes node (required pod anti-affinity on the hostname),
  G `nvidia.com/gpu` per pod as a limit, the pool's node selector and tolerations, and a
  required node affinity for the job's GPU type and -C constraint (the labels the pool's
  `gpu_type_label` and `feature_labels` name);
- a headless Service (publishNotReadyAddresses) that gives the pods stable DNS names
  `<name>-<index>.<name>`, with a DNS search path so that the short `<name>-<index>` of
  SLURM_JOB_NODELIST resolves too;
- a ConfigMap holding the batch script (binaryData: byte for byte) and the in-pod runtime
  (runtime/: sfed_pod.py, the modules it imports, and the `srun` and `scontrol` shims), mounted
  read-only at /sfed;
- a Secret holding the job's own environment (the login environment sbatch exports, which may
  carry API keys: readers of ConfigMaps and pod specs, such as the `view` role, must not see
  it) and the per-job token that the runtime's agents require, mounted at /sfed-secret.

The Secret, ConfigMap and Service are created first and given the Job as owner once it
exists (`owner_patch`), so Kubernetes deletes them with it.
"""

from __future__ import annotations

import base64
import itertools
import math
import posixpath
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from scheduler.config import KubernetesPoolConfig, KubernetesVolume
from scheduler.domain import RemoteSubmission
from scheduler.placement.features import parse_constraint
from scheduler.pools.environment import split_environment
from scheduler.pools.kubernetes import names
from scheduler.pools.kubernetes.capacity import NodeLabels
from scheduler.sbatch_options import expand_filename_pattern

__all__ = [
    "CONFIGMAP_LIMIT",
    "CONTAINER",
    "RUNTIME_DIR",
    "SECRET_DIR",
    "JobObjects",
    "build",
    "environment",
    "left_out",
    "owned_by",
    "owner_patch",
    "runtime_files",
]

CONTAINER = "job"
RUNTIME_DIR = "/sfed"
SECRET_DIR = "/sfed-secret"
CONFIGMAP_LIMIT = 1024 * 1024  # the API server refuses larger ConfigMaps
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # what a pod's env accepts
_RUNTIME_ENTRY = "sfed_pod.py"  # what the container runs; it imports the modules next to it
_RUNTIME_MODULES = (
    "agent.py",
    "batch.py",
    "config.py",
    "hostlist.py",
    "output.py",
    "procs.py",
    "roles.py",
    "scontrol.py",
    "srun.py",
    "srun_layout.py",
    "srun_options.py",
    "wire.py",
)
_RUNTIME_SHIMS = ("srun", "scontrol")  # in bin/, first on the batch script's PATH
_RUNTIME = (_RUNTIME_ENTRY, *_RUNTIME_MODULES, *_RUNTIME_SHIMS)


@dataclass(frozen=True, slots=True)
class JobObjects:
    """The four objects of one attempt; the Secret, ConfigMap and Service get their owner (the
    Job's uid) with `owned_by` once the Job exists."""

    name: str
    job: dict[str, Any]
    config_map: dict[str, Any]
    service: dict[str, Any]
    secret: dict[str, Any]
    dropped_env: tuple[str, ...] = ()  # variables a pod cannot hold, left out

    def companions(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """(kind, object) of what the Job needs, in creation order."""
        return (("Secret", self.secret), ("ConfigMap", self.config_map), ("Service", self.service))


def runtime_files() -> dict[str, str]:
    """The in-pod runtime, as shipped in the package (scheduler/pools/kubernetes/runtime)."""
    root = resources.files("scheduler.pools.kubernetes").joinpath("runtime")
    return {name: root.joinpath(name).read_text(encoding="utf-8") for name in _RUNTIME}


def _runtime_items() -> list[dict[str, Any]]:
    """Where the runtime's files land in RUNTIME_DIR: the modules side by side (a ConfigMap key
    holds no directory), the shims in bin/."""
    return [
        {"key": _RUNTIME_ENTRY, "path": _RUNTIME_ENTRY, "mode": 0o555},
        *({"key": name, "path": name} for name in _RUNTIME_MODULES),
        *({"key": name, "path": f"bin/{name}", "mode": 0o555} for name in _RUNTIME_SHIMS),
    ]


def _labels(name: str, submission: RemoteSubmission) -> dict[str, str]:
    return {**names.tag_labels(submission.tag), names.JOB_LABEL: name}


def _metadata(name: str, submission: RemoteSubmission, namespace: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": _labels(name, submission),
        "annotations": {
            names.TAG_ANNOTATION: submission.tag.render(),
            names.JOB_NAME_ANNOTATION: submission.request.job_name,
        },
    }


def _expand(pattern: str, submission: RemoteSubmission) -> str:
    """sbatch's filename patterns that mean something here (%j, %x, %u, %%); others stay."""
    values = {
        "j": str(submission.tag.job_id),
        "x": submission.request.job_name,
        "u": submission.run_as or "",
        "%": "%",
    }
    path, _ = expand_filename_pattern(pattern, values)
    chdir = submission.request.chdir
    if not path.startswith("/") and chdir:
        path = posixpath.join(chdir, path)
    return path


def _literal(value: str) -> str:
    """An env value the kubelet passes unchanged: it expands $(NAME) and turns $$ into $."""
    return value.replace("$", "$$")


def left_out(submission: RemoteSubmission, config: KubernetesPoolConfig) -> dict[str, str]:
    """The job's own variables a pod will not get, with why."""
    return split_environment(submission, config.environment_drop, _unholdable)[1]


def _unholdable(name: str, value: str) -> str | None:
    if not _ENV_NAME.match(name) or "\0" in value:
        return "a pod's environment cannot hold it"
    return None


def environment(
    submission: RemoteSubmission, config: KubernetesPoolConfig, name: str
) -> tuple[list[dict[str, Any]], dict[str, str], tuple[str, ...]]:
    """The pods' environment: entries for the pod spec (the Slurm variables a batch script
    reads, the runtime's settings, and references into the Secret for the job's own
    variables), the job's own variables for the Secret, and the names left out because a
    pod's environment cannot hold them."""
    request = submission.request
    nodes = request.nodes
    slurm = {
        "SLURM_JOB_ID": str(submission.tag.job_id),
        "SLURM_JOBID": str(submission.tag.job_id),
        "SLURM_JOB_NAME": request.job_name,
        "SLURM_JOB_NODELIST": names.nodelist(name, nodes),
        "SLURM_NODELIST": names.nodelist(name, nodes),
        "SLURM_NNODES": str(nodes),
        "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NTASKS": str(request.tasks),
        "SLURM_NPROCS": str(request.tasks),
        "SLURM_CPUS_PER_TASK": str(request.cpus_per_task),
        "SLURM_GPUS_ON_NODE": str(request.gpus_per_node),
        "SLURM_SUBMIT_DIR": request.submit_dir or request.chdir or "/",
        "SLURM_CLUSTER_NAME": config.name,
        "SLURM_JOB_PARTITION": config.name,
    }
    if request.tasks % nodes == 0:
        slurm["SLURM_NTASKS_PER_NODE"] = str(request.tasks // nodes)
    runtime = {
        "SFED_NODES": ",".join(names.hostnames(name, nodes)),
        "SFED_AGENT_PORT": str(config.agent_port),
        "SFED_DIR": RUNTIME_DIR,
        "SFED_TOKEN_FILE": f"{SECRET_DIR}/token",
    }
    if request.chdir:
        runtime["SFED_CHDIR"] = request.chdir
    if request.output:
        runtime["SFED_STDOUT"] = _expand(request.output, submission)
    if request.error:
        runtime["SFED_STDERR"] = _expand(request.error, submission)
    kept, skipped = split_environment(submission, config.environment_drop, _unholdable)
    dropped = tuple(skipped)
    entries: list[dict[str, Any]] = [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": name, "key": f"env.{k}"}}} for k in kept
    ]
    entries += [{"name": k, "value": _literal(v)} for k, v in {**slurm, **runtime}.items()]
    return entries, kept, dropped


def _volume(index: int, volume: KubernetesVolume) -> dict[str, Any]:
    name = f"path-{index}"
    if volume.pvc is not None:
        return {
            "name": name,
            "persistentVolumeClaim": {"claimName": volume.pvc, "readOnly": volume.read_only},
        }
    if volume.host_path is not None:
        return {"name": name, "hostPath": {"path": volume.host_path, "type": "Directory"}}
    return {
        "name": name,
        "nfs": {"server": volume.nfs_server, "path": volume.nfs_path, "readOnly": volume.read_only},
    }


def _resources(submission: RemoteSubmission, config: KubernetesPoolConfig) -> dict[str, Any]:
    request = submission.request
    requests: dict[str, str] = {"cpu": str(request.cpus_per_node)}
    limits: dict[str, str] = {}
    if request.mem_per_node_mb is not None:
        requests["memory"] = limits["memory"] = f"{request.mem_per_node_mb}Mi"
    if request.gpus_per_node:
        # Extended resources are not overcommitted: the limit is the request.
        requests[config.gpu_resource] = limits[config.gpu_resource] = str(request.gpus_per_node)
    out: dict[str, Any] = {"requests": requests}
    if limits:
        out["limits"] = limits
    return out


# More alternative node selector terms than this (a constraint of many features over many
# feature labels) is refused: the pods would be slow to schedule, and the spec large.
MAX_NODE_TERMS = 64


def _node_terms(submission: RemoteSubmission, config: KubernetesPoolConfig) -> list[Any]:
    """The nodeSelectorTerms (any one of them) that keep the pods on nodes of the job's GPU
    type and features, as capacity.NodeLabels reads them; [] when the job asks neither."""
    request = submission.request
    labels = NodeLabels.of(config)
    common: list[dict[str, Any]] = []
    if request.gpu_type is not None:
        if labels.gpu_type_label is None:
            raise ValueError(
                f"GPU type {request.gpu_type} asked, but the pool has no gpu_type_label"
            )
        values = labels.type_values(request.gpu_type)
        common.append({"key": labels.gpu_type_label, "operator": "In", "values": values})
    if request.constraint is None:
        return [{"matchExpressions": common}] if common else []
    if not labels.feature_labels:
        raise ValueError(f"features {request.constraint} asked, but the pool has no feature_labels")
    constraint = parse_constraint(request.constraint)
    keys = labels.feature_labels
    if constraint.any_of:  # one of the features under any of the labels
        values = sorted(set(constraint.names))
        terms = [[*common, {"key": k, "operator": "In", "values": values}] for k in keys]
    else:  # each feature under a label of its own (a label has one value)
        wanted = sorted(set(constraint.names))
        if len(wanted) > len(keys):
            raise ValueError(
                f"features {request.constraint}: the pool's {len(keys)} feature labels hold at "
                f"most {len(keys)} features per node"
            )
        if math.perm(len(keys), len(wanted)) > MAX_NODE_TERMS:
            raise ValueError(
                f"features {request.constraint}: more than {MAX_NODE_TERMS} ways to find them "
                "among the pool's feature labels"
            )
        terms = [
            [
                *common,
                *(
                    {"key": k, "operator": "In", "values": [f]}
                    for k, f in zip(ks, wanted, strict=True)
                ),
            ]
            for ks in itertools.permutations(keys, len(wanted))
        ]
    return [{"matchExpressions": term} for term in terms[:MAX_NODE_TERMS]]


def _identity(
    submission: RemoteSubmission, config: KubernetesPoolConfig
) -> tuple[int | None, int | None]:
    """uid and gid the pods run as: the owner's (run_as_owner), the pool's, or the image's."""
    if submission.run_as is None:
        return config.run_as_user, config.run_as_group
    try:
        entry = pwd.getpwnam(submission.run_as)
    except KeyError:
        raise ValueError(f"user {submission.run_as!r} is unknown on sfedd's host") from None
    return entry.pw_uid, entry.pw_gid


def _pod_spec(
    name: str, submission: RemoteSubmission, config: KubernetesPoolConfig, env: list[dict[str, Any]]
) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": "sfed", "mountPath": RUNTIME_DIR, "readOnly": True},
        {"name": "sfed-secret", "mountPath": SECRET_DIR, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "sfed",
            "configMap": {
                "name": name,
                "defaultMode": 0o444,
                "items": [*_runtime_items(), {"key": "script", "path": "script"}],
            },
        },
        {
            "name": "sfed-secret",
            "secret": {"secretName": name, "items": [{"key": "token", "path": "token"}]},
        },
    ]
    for index, (path, volume) in enumerate(sorted(config.path_map.items())):
        volumes.append(_volume(index, volume))
        mounts.append(
            {"name": f"path-{index}", "mountPath": path.rstrip("/"), "readOnly": volume.read_only}
        )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": config.image,
        "command": ["python3", f"{RUNTIME_DIR}/sfed_pod.py"],
        "env": env,
        "ports": [{"name": "sfed-agent", "containerPort": config.agent_port}],
        "resources": _resources(submission, config),
        "volumeMounts": mounts,
        # What Pod Security "baseline" and most of "restricted" ask; training needs no more.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if _identity(submission, config)[0]:
        container["securityContext"]["runAsNonRoot"] = True
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": name,
        "dnsConfig": {"searches": [f"{name}.{config.namespace}.svc.{config.cluster_domain}"]},
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {names.JOB_LABEL: name}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "containers": [container],
        "volumes": volumes,
    }
    terms = _node_terms(submission, config)
    if terms:
        spec["affinity"]["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    if config.node_selector:
        spec["nodeSelector"] = dict(config.node_selector)
    if config.tolerations:
        spec["tolerations"] = [
            {k: v for k, v in t.model_dump().items() if v != ""} for t in config.tolerations
        ]
    uid, gid = _identity(submission, config)
    security = {
        key: value for key, value in (("runAsUser", uid), ("runAsGroup", gid)) if value is not None
    }
    if security:
        spec["securityContext"] = security
    if config.service_account:
        spec["serviceAccountName"] = config.service_account
    if config.priority_class:
        spec["priorityClassName"] = config.priority_class
    if config.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]
    return spec


def build(
    submission: RemoteSubmission,
    config: KubernetesPoolConfig,
    token: str,
    runtime: Mapping[str, str] | None = None,
) -> JobObjects:
    """The Job, ConfigMap and Service for `submission`; ValueError for a job the pool cannot
    take as asked (a script too large for a ConfigMap, a name that does not fit)."""
    request = submission.request
    if request.nodes < 1 or request.tasks < request.nodes:
        raise ValueError(f"{request.nodes} nodes and {request.tasks} tasks cannot be placed")
    name = names.object_name(submission.tag, request.job_name)
    env, private, dropped = environment(submission, config, name)
    runtime = runtime_files() if runtime is None else runtime

    data = dict(runtime)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, submission, config.namespace),
        "data": data,
        "binaryData": {"script": base64.b64encode(request.script).decode("ascii")},
    }
    size = len(request.script) + sum(len(v.encode()) for v in data.values())
    if size > CONFIGMAP_LIMIT:
        raise ValueError(
            f"the script and runtime take {size} bytes, more than a ConfigMap holds "
            f"({CONFIGMAP_LIMIT}); keep large data out of the batch script"
        )
    secret_data = {"token": token, **{f"env.{k}": v for k, v in private.items()}}
    secret_size = sum(len(k) + len(v.encode()) for k, v in secret_data.items())
    if secret_size > CONFIGMAP_LIMIT:
        raise ValueError(
            f"the job's environment takes {secret_size} bytes, more than a Secret holds "
            f"({CONFIGMAP_LIMIT}); export fewer variables (sbatch --export)"
        )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, submission, config.namespace),
        "type": "Opaque",
        "data": {
            k: base64.b64encode(v.encode("utf-8", "surrogateescape")).decode("ascii")
            for k, v in secret_data.items()
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, submission, config.namespace),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # peers resolve before they are Ready
            "selector": {names.JOB_LABEL: name},
            "ports": [{"name": "sfed-agent", "port": config.agent_port}],
        },
    }
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": request.nodes,
        "parallelism": request.nodes,
        "backoffLimit": 0,
        # The Job records why it failed when a pod was taken away (preemption, eviction,
        # drain): the evicted pod itself is deleted and cannot tell it later.
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                }
            ]
        },
        "ttlSecondsAfterFinished": config.ttl_after_finished_s,
        "template": {
            "metadata": {"labels": _labels(name, submission)},
            "spec": _pod_spec(name, submission, config, env),
        },
    }
    if request.time_limit_min is not None:
        job_spec["activeDeadlineSeconds"] = request.time_limit_min * 60
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, submission, config.namespace),
        "spec": job_spec,
    }
    return JobObjects(name, job, config_map, service, secret, dropped)


def owned_by(obj: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` with an ownerReference to the created Job (its uid), so that it goes with it."""
    meta = job["metadata"]
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": False,
        # True would need update rights on jobs/finalizers where admission enforces it; the
        # Job's foreground deletion need not wait for these.
        "blockOwnerDeletion": False,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner]}}


def owner_patch(job: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that makes an object owned by the created Job."""
    return {
        "metadata": {
            "ownerReferences": owned_by({"metadata": {}}, job)["metadata"]["ownerReferences"]
        }
    }
