"""Queries over a FakeCluster's objects for the fake's own tests."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from tests.kubeapi import FakeCluster


def job_condition(cluster: FakeCluster, name: str, ctype: str) -> dict[str, Any] | None:
    """The Job's condition of that type when True, else None."""
    for job in cluster.objects("Job", "default"):
        if job["metadata"]["name"] == name:
            for cond in job["status"].get("conditions") or []:
                if cond["type"] == ctype and cond["status"] == "True":
                    return cond
    return None


def pods_of(cluster: FakeCluster, job_name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster.objects("Pod", "default")
        if (p["metadata"].get("labels") or {}).get("job-name") == job_name
    ]


def raw_request(
    cluster: FakeCluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: bool = True,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any], list[str]]:
    """(status, JSON body, Warning headers) of a request that bypasses the client's own checks."""
    ctx = ssl.create_default_context(cafile=str(cluster.workdir / "pki" / "ca.crt"))
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {cluster.token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cluster.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get_all("Warning") or []
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers.get_all("Warning") or []
