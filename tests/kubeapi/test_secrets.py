"""Secrets: create and validation, secret volumes, envFrom and secretKeyRef in the kubelet."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import config_map, job, secret
from tests.kubeapi.lookups import job_condition, pods_of, raw_request

SECRETS = "/api/v1/namespaces/default/secrets"


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def _run_log(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster, body: dict[str, Any]
) -> bytes:
    batch.create_namespaced_job("default", body, field_validation="Strict")
    name = body["metadata"]["name"]
    cluster.wait_for(
        lambda: job_condition(cluster, name, "Complete") or job_condition(cluster, name, "Failed")
    )
    pod = pods_of(cluster, name)[0]["metadata"]["name"]
    log = core.read_namespaced_pod_log(pod, "default", _preload_content=False).data
    assert job_condition(cluster, name, "Complete") is not None, log
    return log


def test_secret_create_merges_string_data_and_defaults_type(
    core: client.CoreV1Api, cluster: FakeCluster
) -> None:
    """stringData is folded into data (winning over the same key) and never returned."""
    body = secret(
        "creds",
        {"token": b"old", "bin": b"\x00\xff"},
        {"token": "new", "user": "me"},
        immutable=True,
    )
    created = core.create_namespaced_secret("default", body, field_validation="Strict")
    assert created.type == "Opaque" and created.immutable is True
    assert created.string_data is None
    decoded = {k: base64.b64decode(v) for k, v in created.data.items()}
    assert decoded == {"token": b"new", "bin": b"\x00\xff", "user": b"me"}
    read = core.read_namespaced_secret("creds", "default")
    assert read.data == created.data
    listed = core.list_namespaced_secret("default", label_selector="")
    assert [s.metadata.name for s in listed.items] == ["creds"]
    raw = cluster.objects("Secret")[0]
    assert "stringData" not in raw
    status = core.delete_namespaced_secret("creds", "default", propagation_policy="Background")
    assert status["details"]["kind"] == "secrets" and not cluster.objects("Secret")


def test_secret_bad_base64_is_a_decoding_error(cluster: FakeCluster) -> None:
    """Undecodable base64 in data fails JSON decoding: a 400, as the apiserver answers."""
    body = {"metadata": {"name": "bad"}, "data": {"k": "not*base64"}}
    code, status, _ = raw_request(cluster, "POST", SECRETS + "?fieldValidation=Strict", body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )


def test_secret_validation_errors(core: client.CoreV1Api, cluster: FakeCluster) -> None:
    """Bad key names, over 1 MiB of data, and an unknown field under Strict are rejected."""
    with pytest.raises(ApiException) as e:
        core.create_namespaced_secret(
            "default", secret("keys", string_data={"bad key": "x"}), field_validation="Strict"
        )
    assert e.value.status == 422
    assert 'data[bad key]: Invalid value: "bad key"' in _status(e.value)["message"]
    big = secret("big", {"a": b"x" * (1024 * 1024)}, {"b": "y"})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_secret("default", big, field_validation="Strict")
    assert e.value.status == 422
    assert _status(e.value)["message"] == (
        'Secret "big" is invalid: data: Too long: must have at most 1048576 bytes'
    )
    tls = secret("tls", {"tls.crt": b"c"}, type="kubernetes.io/tls")
    with pytest.raises(ApiException) as e:
        core.create_namespaced_secret("default", tls, field_validation="Strict")
    assert "data[tls.key]: Required value" in _status(e.value)["message"]

    code, status, _ = raw_request(
        cluster, "POST", SECRETS + "?fieldValidation=Strict", secret("s", bogus=1)
    )
    assert code == 400
    assert 'strict decoding error: unknown field "bogus"' in status["message"]


def test_secret_volume_materialised_with_modes(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster, tmp_path: Path
) -> None:
    """Decoded bytes at item paths with their mode; defaultMode 0644 otherwise."""
    core.create_namespaced_secret(
        "default", secret("vol", {"key": b"s3cr3t\n", "other": b"x"}), field_validation="Strict"
    )
    mount = tmp_path / "sec"
    items = {"name": "s", "secret": {"secretName": "vol"}}
    items["secret"]["items"] = [{"key": "key", "path": "d/key.pem", "mode": 0o400}]
    whole = {"name": "w", "secret": {"secretName": "vol"}}
    command = (
        f"cat {mount}/d/key.pem; stat -c %a {mount}/d/key.pem; ls {mount};"
        f" stat -c %a {mount}-all/other"
    )
    body = job("sv", command, pod={"volumes": [items, whole]})
    body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "s", "mountPath": str(mount)},
        {"name": "w", "mountPath": f"{mount}-all"},
    ]
    assert _run_log(core, batch, cluster, body) == b"s3cr3t\n400\nd\n644\n"
    spec = cluster.objects("Job")[0]["spec"]["template"]["spec"]
    assert spec["volumes"][1]["secret"]["defaultMode"] == 0o644


def test_env_from_secret_and_config_map_with_env_override(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """env overrides envFrom; only env values expand $(VAR); invalid key names are skipped."""
    core.create_namespaced_secret(
        "default",
        secret(
            "env",
            string_data={
                "PASSWORD": "pw",
                "OVERRIDDEN": "from-secret",
                "RAW": "$(PASSWORD)",
                "1BAD": "skipped",
            },
        ),
        field_validation="Strict",
    )
    core.create_namespaced_config_map(
        "default", config_map("cm", {"MODE": "fast"}), field_validation="Strict"
    )
    c = {
        "envFrom": [
            {"secretRef": {"name": "env"}},
            {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
            {"secretRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "OVERRIDDEN", "value": "from-env"},
            {"name": "EXPANDED", "value": "p=$(PASSWORD)"},
            {"name": "ONE", "valueFrom": {"secretKeyRef": {"name": "env", "key": "PASSWORD"}}},
        ],
    }
    body = job(
        "ef", 'echo "$PASSWORD|$OVERRIDDEN|$RAW|$EXPANDED|$ONE|$CM_MODE|$(env | grep -c 1BAD)"'
    )
    body["spec"]["template"]["spec"]["containers"][0].update(c)
    log = _run_log(core, batch, cluster, body)
    assert log == b"pw|from-env|$(PASSWORD)|p=pw|pw|fast|0\n"
    pod = pods_of(cluster, "ef")[0]["metadata"]["name"]
    assert (pod, "InvalidEnvironmentVariableNames") in [e[:2] for e in cluster.kubelet.events]


def test_pod_waits_for_missing_secret(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """A missing Secret keeps the container waiting: envFrom -> CreateContainerConfigError."""
    body = job("ws", "true")
    body["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "nope"}}]
    batch.create_namespaced_job("default", body, field_validation="Strict")

    def waiting() -> dict[str, Any] | None:
        for p in pods_of(cluster, "ws"):
            for s in p["status"].get("containerStatuses") or []:
                if s["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError":
                    return s["state"]["waiting"]
        return None

    cluster.wait_for(lambda: waiting() is not None)
    assert waiting() == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "nope" not found',
    }
    assert pods_of(cluster, "ws")[0]["status"]["phase"] == "Pending"
