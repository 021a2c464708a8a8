"""Defaulting the apiserver applies on create (pkg/apis/*/v1/defaults.go and strategies)."""

from __future__ import annotations

from typing import Any

JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def default_container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image") or ""
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = image.endswith(":latest") or not tagged
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    resources = c.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        # Requests default to limits for each resource that has no request.
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for var in c.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("fieldRef")
        if ref is not None:
            ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        default_container(c)
    for v in spec.get("volumes") or []:
        if v.get("configMap") is not None:
            v["configMap"].setdefault("defaultMode", 0o644)
        if v.get("secret") is not None:
            v["secret"].setdefault("defaultMode", 0o644)
        if v.get("hostPath") is not None:
            v["hostPath"].setdefault("type", "")
    for t in spec.get("tolerations") or []:
        t.setdefault("operator", "Equal")


def default_pod(pod: dict[str, Any]) -> None:
    default_pod_spec(pod.setdefault("spec", {}))
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod["spec"])}


def qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    reqs = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    lims = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(reqs) and not any(lims):
        return "BestEffort"
    guaranteed = all(
        all(k in lim for k in ("cpu", "memory")) and req == lim
        for req, lim in zip(reqs, lims, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def default_job(job: dict[str, Any]) -> None:
    meta = job["metadata"]
    spec = job.setdefault("spec", {})
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", None)
    if spec["manualSelector"] is None:
        del spec["manualSelector"]
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec["completionMode"] == "Indexed":
        spec.setdefault("backoffLimitPerIndex", None)
        if spec["backoffLimitPerIndex"] is None:
            del spec["backoffLimitPerIndex"]
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    if not spec.get("manualSelector"):
        labels = tmeta.setdefault("labels", {})
        if spec.get("selector") is None:
            spec["selector"] = {"matchLabels": {JOB_UID_LABELS[0]: meta["uid"]}}
        for key in JOB_UID_LABELS:
            labels.setdefault(key, meta["uid"])
        for key in JOB_NAME_LABELS:
            labels.setdefault(key, meta["name"])
    # SetDefaults_Job shares the template's label map with an unlabelled Job, so the Job also
    # carries the generated selector labels.
    if not meta.get("labels") and tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    default_pod_spec(template.setdefault("spec", {}))
    job["status"] = {}


def default_service(svc: dict[str, Any], allocate_ip: Any) -> None:
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if not spec.get("clusterIP"):
        spec["clusterIP"] = allocate_ip()
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("ipFamilies", ["IPv4"])
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    svc["status"] = {"loadBalancer": {}}


def default_secret(secret: dict[str, Any]) -> None:
    secret.setdefault("type", "Opaque")
    if not secret["type"]:
        secret["type"] = "Opaque"
