"""Manifest builders for the fake cluster's own tests."""

from __future__ import annotations

import base64
from typing import Any


def container(command: str = "true", **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", command], **extra}


def job(name: str = "j", command: str = "true", *, indexed: int = 0, **spec: Any) -> dict[str, Any]:
    """A Job whose single container runs `command`; indexed=N makes it Indexed with N pods."""
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container(command)]}
    pod_spec.update(spec.pop("pod", {}))
    body: dict[str, Any] = {
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        "backoffLimit": 0,
        **spec,
    }
    if indexed:
        body.update(completionMode="Indexed", completions=indexed, parallelism=indexed)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}


def headless_service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": selector},
    }


def config_map(name: str, data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data or {},
        **extra,
    }


def secret(
    name: str,
    data: dict[str, bytes] | None = None,
    string_data: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Secret; data values are raw bytes, base64-encoded here as the wire format wants."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    if data is not None:
        body["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    if string_data is not None:
        body["stringData"] = string_data
    return body | extra


def anti_affinity(app: str) -> dict[str, Any]:
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": app}}}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
