"""The Job, Service and ConfigMap of a submission, checked against Kubernetes' own schemas."""

from __future__ import annotations

import base64
import json
import pwd
import re
from functools import partial
from importlib import resources
from typing import Any

import kubernetes_validate
import pytest

from scheduler.config import KubernetesPoolConfig, parse_config
from scheduler.domain import RemoteSubmission
from scheduler.pools.kubernetes import manifests, names
from tests.fixtures import submissions

KUBERNETES_VERSION = "1.37"  # the schemas the manifests must satisfy (kubernetes-validate)
# Stand-ins for the runtime's files (sfed_pod.py, its modules, the srun and scontrol shims).
RUNTIME = {name: f"# {name}\n" for name in manifests.runtime_files()}
RUNTIME["sfed_pod.py"] = "print('runtime')\n"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def pool(**overrides: Any) -> KubernetesPoolConfig:
    data = {"name": "kube", "kind": "kubernetes", "image": "nvcr.io/nvidia/pytorch:25.01-py3"}
    config = parse_config({"pools": [{**data, **overrides}]})
    result = config.pools[0]
    assert isinstance(result, KubernetesPoolConfig)
    return result


submission = partial(
    submissions.submission,
    tag=submissions.remote_tag("fed", 42, 1),
    sfed_env={"SFED_JOB_ID": "42", "SFED_CHECKPOINT_DIR": "/ckpt/42"},
    script=b"#!/bin/bash\nsrun hostname\n",
    nodes=2,
)


def build(
    sub: RemoteSubmission | None = None, config: KubernetesPoolConfig | None = None
) -> manifests.JobObjects:
    return manifests.build(sub or submission(), config or pool(), "t0ken", runtime=RUNTIME)


def env_of(objects: manifests.JobObjects) -> dict[str, str]:
    """The environment the pods get: plain values as the kubelet reads them ($$ -> $), and
    the Secret's values for the references into it."""
    secret = {k: base64.b64decode(v).decode() for k, v in objects.secret["data"].items()}
    container = objects.job["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"].replace("$$", "$")
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == objects.name
            env[entry["name"]] = secret[ref["key"]]
    return env


def assert_valid(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


FULL_POOL: dict[str, Any] = {
    "namespace": "gpu-burst",
    "node_selector": {"cloud.google.com/gke-nodepool": "a100-pool"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "ml", "effect": "NoExecute"},
    ],
    "path_map": {
        "/shared": {"pvc": "shared-data"},
        "/datasets": {"host_path": "/mnt/datasets", "read_only": True},
        "/ckpt": {"nfs_server": "10.0.0.2", "nfs_path": "/exports/ckpt"},
    },
    "run_as_user": 1000,
    "run_as_group": 1000,
    "service_account": "trainer",
    "image_pull_secrets": ["regcred"],
    "gpu_resource": "nvidia.com/gpu",
}

PRODUCT = "nvidia.com/gpu.product"
TYPED_POOL: dict[str, Any] = {
    "gpu_type_label": PRODUCT,
    "gpu_types": {"NVIDIA-A100-SXM4-80GB": "a100", "NVIDIA-A100-SXM4-40GB": "a100"},
    "feature_labels": ["sfed.io/net", "sfed.io/disk"],
}

CASES = {
    "two-nodes-gpus": (submission(gpus_per_node=4), pool()),
    "cpu-only-one-node": (submission(nodes=1, gpus_per_node=0), pool()),
    "mem-time-chdir-output": (
        submission(
            gpus_per_node=8,
            mem_per_node_mb=64000,
            time_limit_min=90,
            chdir="/shared/run",
            output="out-%j.log",
            error="/shared/err-%x.log",
        ),
        pool(),
    ),
    "full-pool": (submission(gpus_per_node=8, ntasks=16, cpus_per_task=4), pool(**FULL_POOL)),
    "typed-and-constrained": (
        submission(gpus_per_node=8, gpu_type="a100", constraint="ib&nvme"),
        pool(**FULL_POOL, **TYPED_POOL),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("kind", ["job", "config_map", "service", "secret"])
def test_every_manifest_passes_the_kubernetes_schema(
    case: tuple[RemoteSubmission, KubernetesPoolConfig], kind: str
) -> None:
    """Each object validates strictly (no unknown field, all required ones) against 1.37."""
    objects = build(*case)
    obj = getattr(objects, kind)
    if kind != "job":
        obj = manifests.owned_by(obj, {"metadata": {"name": objects.name, "uid": "u-1"}})
    assert_valid(obj)


def test_schema_check_rejects_an_unknown_field() -> None:
    """The strict schema check used above does catch a misspelt field."""
    job = build().job
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 4
    with pytest.raises(kubernetes_validate.ValidationError):
        assert_valid(job)


@pytest.mark.parametrize(
    "job_name", ["sbatch", "Train ResNet-50 (v2)!", "x" * 300, "---", "训练", "a.b_c"]
)
def test_names_are_dns_labels_whatever_the_job_name(job_name: str) -> None:
    """Job, Service and ConfigMap share a DNS-1035 name with room for the pod index."""
    objects = build(submission(job_name=job_name))
    assert DNS_1035.match(objects.name) and len(objects.name) <= names.MAX_NAME
    for obj in (objects.job, objects.config_map, objects.service, objects.secret):
        assert obj["metadata"]["name"] == objects.name
        assert obj["metadata"]["annotations"][names.JOB_NAME_ANNOTATION] == job_name


def test_objects_carry_the_tag_as_labels_and_annotation() -> None:
    """A restarted sfedd finds the objects by the federation job id and attempt."""
    objects = build()
    for obj in (objects.job, objects.config_map, objects.service, objects.secret):
        meta = obj["metadata"]
        assert meta["labels"][names.JOB_ID_LABEL] == "42"
        assert meta["labels"][names.ATTEMPT_LABEL] == "1"
        assert meta["annotations"][names.TAG_ANNOTATION] == "sfed/fed/42/1"
    assert objects.job["spec"]["template"]["metadata"]["labels"][names.JOB_LABEL] == objects.name


def test_indexed_job_has_one_pod_per_node_and_fails_on_the_first_failure() -> None:
    """completions = parallelism = nodes, backoffLimit 0, restartPolicy Never."""
    spec = build(submission(nodes=3)).job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_pods_spread_one_per_kubernetes_node() -> None:
    """Required anti-affinity on the hostname against the job's own pods."""
    objects = build()
    terms = objects.job["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms == [
        {
            "labelSelector": {"matchLabels": {names.JOB_LABEL: objects.name}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]


def test_gpus_are_limits_equal_to_requests_per_pod() -> None:
    """nvidia.com/gpu is asked per pod, as a limit equal to the request."""
    res = build(submission(gpus_per_node=4)).job["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "4"


def test_no_gpu_resource_when_the_job_asks_none() -> None:
    """A CPU job does not ask for GPUs at all."""
    res = build(submission(gpus_per_node=0)).job["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    assert "nvidia.com/gpu" not in res["requests"] and "limits" not in res


def test_cpus_per_pod_follow_the_tasks_on_a_node() -> None:
    """16 tasks of 4 CPUs on 2 nodes: each pod asks 32 CPUs."""
    container = build(submission(ntasks=16, cpus_per_task=4)).job["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["resources"]["requests"]["cpu"] == "32"


def test_path_map_mounts_volumes_at_the_federation_paths() -> None:
    """PVC, hostPath and NFS volumes are mounted at the same absolute paths as on Slurm."""
    spec = build(config=pool(**FULL_POOL)).job["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/shared"]["name"]]["persistentVolumeClaim"]["claimName"] == "shared-data"
    assert volumes[mounts["/datasets"]["name"]]["hostPath"]["path"] == "/mnt/datasets"
    assert mounts["/datasets"]["readOnly"] is True
    assert volumes[mounts["/ckpt"]["name"]]["nfs"] == {
        "server": "10.0.0.2",
        "path": "/exports/ckpt",
        "readOnly": False,
    }
    assert mounts["/sfed"]["readOnly"] is True


def test_node_pool_selector_tolerations_and_identity_are_applied() -> None:
    """The pool's node selector, tolerations, user, service account and pull secret."""
    spec = build(config=pool(**FULL_POOL)).job["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a100-pool"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"},
    ]
    assert spec["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000}
    assert spec["serviceAccountName"] == "trainer"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]


def test_script_is_kept_byte_for_byte() -> None:
    """The ConfigMap's binaryData holds the script exactly, NUL and non-UTF-8 included."""
    script = b"#!/bin/sh\n# \xff\xfe\x00 not text\necho hi\r\n"
    cm = build(submission(script=script)).config_map
    assert base64.b64decode(cm["binaryData"]["script"]) == script
    assert cm["data"]["sfed_pod.py"] == RUNTIME["sfed_pod.py"]


def test_a_script_too_large_for_a_configmap_is_refused() -> None:
    """Over 1 MiB with the runtime: a clear ValueError instead of a 422 from the cluster."""
    with pytest.raises(ValueError, match="more than a ConfigMap holds"):
        build(submission(script=b"#!/bin/sh\n" + b"#" * manifests.CONFIGMAP_LIMIT))


def test_slurm_environment_of_the_pods() -> None:
    """The SLURM_* variables a batch script reads, with the hostnames as the node list."""
    objects = build(submission(nodes=2, ntasks=8, gpus_per_node=4, chdir="/shared/run"))
    env = env_of(objects)
    assert env["SLURM_JOB_ID"] == "42"
    assert env["SLURM_JOB_NODELIST"] == f"{objects.name}-[0-1]"
    assert (env["SLURM_NNODES"], env["SLURM_NTASKS"], env["SLURM_GPUS_ON_NODE"]) == ("2", "8", "4")
    assert env["SLURM_NTASKS_PER_NODE"] == "4"
    assert env["SLURM_SUBMIT_DIR"] == env["SFED_CHDIR"] == "/shared/run"
    assert env["SFED_NODES"] == f"{objects.name}-0,{objects.name}-1"
    assert env["SFED_CHECKPOINT_DIR"] == "/ckpt/42"


def test_login_node_settings_stay_out_of_the_image() -> None:
    """PATH, HOME, LD_* and stale SLURM_* of the submit host are not passed; the rest is."""
    env = env_of(
        build(
            submission(
                environment={
                    "PATH": "/home/u/bin:/usr/bin",
                    "LD_LIBRARY_PATH": "/opt/x",
                    "HOME": "/home/u",
                    "SLURM_JOB_ID": "999",
                    "WANDB_PROJECT": "resnet",
                }
            )
        )
    )
    assert "PATH" not in env and "LD_LIBRARY_PATH" not in env and "HOME" not in env
    assert env["SLURM_JOB_ID"] == "42" and env["WANDB_PROJECT"] == "resnet"


def test_variables_a_pod_cannot_hold_are_dropped_and_named() -> None:
    """A name Kubernetes refuses (BASH_FUNC_x%%) is left out and reported."""
    objects = build(submission(environment={"BASH_FUNC_f%%": "() { :; }", "OK": "1"}))
    assert objects.dropped_env == ("BASH_FUNC_f%%",)
    assert env_of(objects)["OK"] == "1"


def test_output_patterns_are_expanded_against_the_working_directory() -> None:
    """-o out-%j.log in /shared/run becomes /shared/run/out-42.log for the runtime."""
    env = env_of(build(submission(chdir="/shared/run", output="out-%j.log", error="/e/%x.%%")))
    assert env["SFED_STDOUT"] == "/shared/run/out-42.log"
    assert env["SFED_STDERR"] == "/e/sbatch.%"


def test_time_limit_becomes_the_active_deadline() -> None:
    """--time=90 -> activeDeadlineSeconds 5400; none without a limit."""
    assert build(submission(time_limit_min=90)).job["spec"]["activeDeadlineSeconds"] == 5400
    assert "activeDeadlineSeconds" not in build().job["spec"]


def test_headless_service_publishes_pods_before_they_are_ready() -> None:
    """Peers resolve each other while they start; the pods use its name as subdomain."""
    objects = build()
    spec = objects.service["spec"]
    assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
    assert spec["selector"] == {names.JOB_LABEL: objects.name}
    pod = objects.job["spec"]["template"]["spec"]
    assert pod["subdomain"] == objects.name
    assert pod["dnsConfig"]["searches"] == [f"{objects.name}.default.svc.cluster.local"]


def test_owned_by_points_at_the_job() -> None:
    """ConfigMap and Service go when the Job goes."""
    owned = manifests.owned_by(build().service, {"metadata": {"name": "j", "uid": "u-1"}})
    (ref,) = owned["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Job", "j", "u-1")


def test_runtime_files_ship_with_the_package() -> None:
    """The in-pod runtime and its shims are package data: every file of runtime/ ships."""
    files = manifests.runtime_files()
    shipped = resources.files("scheduler.pools.kubernetes").joinpath("runtime").iterdir()
    assert set(files) == {entry.name for entry in shipped if entry.is_file()}
    assert {"sfed_pod.py", "srun", "scontrol"} <= set(files)
    assert files["srun"].startswith("#!")


def test_the_token_and_the_jobs_environment_are_in_the_secret_only() -> None:
    """Readers of ConfigMaps and pod specs (the `view` role) see neither the agents' token
    nor the values of the job's own variables."""
    objects = build(submission(environment={"WANDB_API_KEY": "s3cr3t-value"}))
    public = json.dumps([objects.job, objects.config_map, objects.service])
    assert "s3cr3t-value" not in public and "t0ken" not in public
    secret = objects.secret["data"]
    assert base64.b64decode(secret["token"]) == b"t0ken"
    assert base64.b64decode(secret["env.WANDB_API_KEY"]) == b"s3cr3t-value"
    assert env_of(objects)["SFED_TOKEN_FILE"] == f"{manifests.SECRET_DIR}/token"


def test_dollar_signs_reach_the_pods_unchanged() -> None:
    """The kubelet expands $(VAR) and $$ in env values: they are escaped, so a job name with
    them arrives as typed."""
    objects = build(submission(job_name="a$(HOME)$$b"))
    container = objects.job["spec"]["template"]["spec"]["containers"][0]
    [entry] = [e for e in container["env"] if e["name"] == "SLURM_JOB_NAME"]
    assert entry["value"] == "a$$(HOME)$$$$b"


@pytest.mark.parametrize(
    "name", ["NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]
)
def test_gpu_visibility_of_the_login_node_is_not_passed(name: str) -> None:
    """The device plugin decides which GPUs a pod sees, not the submit environment."""
    assert name not in env_of(build(submission(environment={name: "all"})))


def test_containers_drop_privileges() -> None:
    """No privilege escalation, no capabilities, the runtime's seccomp profile."""
    container = build().job["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_priority_class_and_cluster_domain_are_applied() -> None:
    """priority_class names the pods' PriorityClass; cluster_domain the DNS search path."""
    objects = build(config=pool(priority_class="research-low", cluster_domain="corp.internal"))
    spec = objects.job["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "research-low"
    assert spec["dnsConfig"]["searches"] == [f"{objects.name}.default.svc.corp.internal"]


def test_evictions_fail_the_job_through_its_pod_failure_policy() -> None:
    """A DisruptionTarget pod condition fails the Job with a reason that stays recorded."""
    [rule] = build().job["spec"]["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailJob",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }


def test_owner_patch_names_the_job() -> None:
    """The merge patch that hands a companion to the Job carries only the ownerReference."""
    patch = manifests.owner_patch({"metadata": {"name": "j", "uid": "u-1"}})
    [ref] = patch["metadata"]["ownerReferences"]
    assert set(patch) == {"metadata"} and (ref["name"], ref["uid"]) == ("j", "u-1")


def test_run_as_owner_uses_the_owners_uid_and_gid() -> None:
    """With run_as_owner, pods run as the job's owner as sfedd's host knows them."""
    sub = submission()
    owned = RemoteSubmission(tag=sub.tag, request=sub.request, run_as="nobody")
    spec = build(owned, pool(run_as_owner=True)).job["spec"]["template"]["spec"]
    nobody = pwd.getpwnam("nobody")
    assert spec["securityContext"] == {"runAsUser": nobody.pw_uid, "runAsGroup": nobody.pw_gid}
    assert spec["containers"][0]["securityContext"]["runAsNonRoot"] is True


def test_an_owner_unknown_to_sfedd_is_refused() -> None:
    """No uid for the owner: a clear ValueError rather than pods running as root."""
    sub = submission()
    owned = RemoteSubmission(tag=sub.tag, request=sub.request, run_as="no-such-user-x")
    with pytest.raises(ValueError, match="unknown on sfedd's host"):
        build(owned, pool(run_as_owner=True))


def node_terms(objects: manifests.JobObjects) -> list[dict[str, Any]] | None:
    """The pods' required nodeSelectorTerms, None without a node affinity."""
    affinity = objects.job["spec"]["template"]["spec"]["affinity"].get("nodeAffinity")
    if affinity is None:
        return None
    terms: list[dict[str, Any]] = affinity["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    return terms


def _in(key: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": list(values)}


A100_VALUES = ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB", "a100")  # and itself


@pytest.mark.parametrize(
    ("fields", "terms"),
    [
        pytest.param({}, None, id="neither: no node affinity"),
        pytest.param(
            {"gpu_type": "a100"},
            [{"matchExpressions": [_in(PRODUCT, *A100_VALUES)]}],
            id="GPU type: the label values that mean it",
        ),
        pytest.param(
            {"gpu_type": "a100", "constraint": "ib|roce"},
            [
                {
                    "matchExpressions": [
                        _in(PRODUCT, *A100_VALUES),
                        _in("sfed.io/net", "ib", "roce"),
                    ]
                },
                {
                    "matchExpressions": [
                        _in(PRODUCT, *A100_VALUES),
                        _in("sfed.io/disk", "ib", "roce"),
                    ]
                },
            ],
            id="any feature: under any feature label",
        ),
        pytest.param(
            {"constraint": "ib&nvme"},
            [
                {"matchExpressions": [_in("sfed.io/net", "ib"), _in("sfed.io/disk", "nvme")]},
                {"matchExpressions": [_in("sfed.io/disk", "ib"), _in("sfed.io/net", "nvme")]},
            ],
            id="every feature: each under a label of its own",
        ),
    ],
)
def test_gpu_type_and_features_become_a_node_affinity(
    fields: dict[str, Any], terms: list[dict[str, Any]] | None
) -> None:
    """The pods go only to nodes whose labels give the job's GPU type and features."""
    assert node_terms(build(submission(gpus_per_node=1, **fields), pool(**TYPED_POOL))) == terms


@pytest.mark.parametrize(
    ("fields", "config", "message"),
    [
        pytest.param(
            {"gpu_type": "a100"},
            {},
            "GPU type a100 asked, but the pool has no gpu_type_label",
            id="no type label",
        ),
        pytest.param(
            {"constraint": "ib"},
            {},
            "features ib asked, but the pool has no feature_labels",
            id="no feature labels",
        ),
        pytest.param(
            {"constraint": "a&b&c"},
            TYPED_POOL,
            "features a&b&c: the pool's 2 feature labels hold at most 2 features per node",
            id="more features than labels",
        ),
    ],
)
def test_gpu_type_or_features_the_pool_cannot_select_are_refused(
    fields: dict[str, Any], config: dict[str, Any], message: str
) -> None:
    """A type or constraint the pool's labels cannot express is a ValueError (a refusal)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        build(submission(gpus_per_node=1, **fields), pool(**config))
