"""The API server rejects what a real kube-apiserver rejects, with the same Status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import config_map, container, headless_service, job
from tests.kubeapi.lookups import raw_request


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def _create_job(batch: client.BatchV1Api, body: dict[str, Any]) -> Any:
    return batch.create_namespaced_job("default", body, field_validation="Strict")


JOBS = "/apis/batch/v1/namespaces/default/jobs"


def test_unknown_field_rejected_with_strict(cluster: FakeCluster) -> None:
    """fieldValidation=Strict turns an unknown field into a 400 naming it."""
    body = job()
    body["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    code, status, _ = raw_request(cluster, "POST", JOBS + "?fieldValidation=Strict", body)
    assert code == 400
    assert (
        'strict decoding error: unknown field "spec.template.spec.containers[0].bogus"'
        in status["message"]
    )


def test_unknown_field_dropped_with_warning_by_default(cluster: FakeCluster) -> None:
    """Without Strict the unknown field is dropped, with a Warning header."""
    body = job()
    body["spec"]["bogus"] = 1
    code, created, warnings = raw_request(cluster, "POST", JOBS, body)
    assert (code, "bogus" in created["spec"]) == (201, False)
    assert warnings == ['299 - "unknown field \\"spec.bogus\\""']


def test_missing_required_field_rejected(cluster: FakeCluster) -> None:
    """A container without a name is a 422 naming the field."""
    body = job()
    del body["spec"]["template"]["spec"]["containers"][0]["name"]
    code, status, _ = raw_request(cluster, "POST", JOBS + "?fieldValidation=Strict", body)
    assert code == 422
    assert "spec.template.spec.containers[0].name: Required value" in status["message"]


def test_job_name_must_be_dns_subdomain(batch: client.BatchV1Api) -> None:
    """An upper-case Job name is invalid, with the apiserver's message."""
    with pytest.raises(ApiException) as e:
        _create_job(batch, job(name="Bad_Name"))
    status = _status(e.value)
    assert (e.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(
        'Job.batch "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'
    )


def test_service_name_must_be_dns1035_label(core: client.CoreV1Api) -> None:
    """A Service name starting with a digit is not a DNS-1035 label."""
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(
            "default", headless_service("1abc", {"a": "b"}), field_validation="Strict"
        )
    assert e.value.status == 422
    assert "a DNS-1035 label must consist of" in _status(e.value)["message"]


def test_duplicate_create_conflicts(batch: client.BatchV1Api) -> None:
    """Creating an existing name is a 409 AlreadyExists."""
    _create_job(batch, job())
    with pytest.raises(ApiException) as e:
        _create_job(batch, job())
    assert e.value.status == 409
    assert _status(e.value)["message"] == 'jobs.batch "j" already exists'


def test_request_without_token_unauthorized(cluster: FakeCluster) -> None:
    """No bearer token: 401 Status."""
    code, status, _ = raw_request(cluster, "GET", "/api/v1/nodes", token=False)
    assert (code, status["reason"]) == (401, "Unauthorized")


def test_configmap_over_one_mebibyte_rejected(core: client.CoreV1Api) -> None:
    """ConfigMap data beyond 1 MiB in total is too long."""
    body = config_map("big", {"a": "x" * (1024 * 1024), "b": "y"})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", body, field_validation="Strict")
    assert e.value.status == 422
    assert "Too long: must have at most 1048576 bytes" in _status(e.value)["message"]


def test_gpu_request_without_limit_rejected(batch: client.BatchV1Api) -> None:
    """Extended resources cannot be requested without an equal limit."""
    body = job()
    body["spec"]["template"]["spec"]["containers"] = [
        container(resources={"requests": {"nvidia.com/gpu": "1"}})
    ]
    with pytest.raises(ApiException) as e:
        _create_job(batch, body)
    assert "Limit must be set for non overcommitable resources" in _status(e.value)["message"]


def test_gpu_limit_defaults_request(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """A GPU limit alone is valid: the request defaults to it."""
    body = job()
    body["spec"]["template"]["spec"]["containers"] = [
        container(resources={"limits": {"nvidia.com/gpu": "2"}})
    ]
    _create_job(batch, body)
    resources = cluster.objects("Job")[0]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"nvidia.com/gpu": "2"}


def test_volume_mount_must_name_a_volume(batch: client.BatchV1Api) -> None:
    """A volumeMount of an undeclared volume is invalid."""
    body = job()
    body["spec"]["template"]["spec"]["containers"] = [
        container(volumeMounts=[{"name": "nope", "mountPath": "/x"}])
    ]
    with pytest.raises(ApiException) as e:
        _create_job(batch, body)
    assert (
        'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "nope"'
        in _status(e.value)["message"]
    )


def test_job_restart_policy_always_rejected(batch: client.BatchV1Api) -> None:
    """Job pods may not use restartPolicy Always."""
    body = job(pod={"restartPolicy": "Always"})
    with pytest.raises(ApiException) as e:
        _create_job(batch, body)
    assert (
        'spec.template.spec.restartPolicy: Unsupported value: "Always"'
        in _status(e.value)["message"]
    )


def test_create_in_missing_namespace_not_found(batch: client.BatchV1Api) -> None:
    """Creating in a namespace that does not exist is a 404 about the namespace."""
    with pytest.raises(ApiException) as e:
        batch.create_namespaced_job("nowhere", job(), field_validation="Strict")
    assert _status(e.value)["message"] == 'namespaces "nowhere" not found'


def test_job_defaults(batch: client.BatchV1Api) -> None:
    """The apiserver's Job defaults and generated selector come back from create."""
    created = _create_job(batch, job(name="d"))
    spec = created.spec
    assert (spec.backoff_limit, spec.completions, spec.parallelism, spec.completion_mode) == (
        0,
        1,
        1,
        "NonIndexed",
    )
    uid = created.metadata.uid
    assert spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert spec.template.metadata.labels["job-name"] == "d"
    assert spec.template.spec.termination_grace_period_seconds == 30


def test_label_selector_filters_list(batch: client.BatchV1Api) -> None:
    """Set-based label selectors filter lists."""
    _create_job(batch, job(name="a"))
    _create_job(batch, job(name="b"))
    names = [
        j.metadata.name
        for j in batch.list_namespaced_job("default", label_selector="job-name in (b,c)").items
    ]
    assert names == ["b"]


def test_unsupported_field_selector_rejected(core: client.CoreV1Api) -> None:
    """An unknown field label is a 400 like the apiserver's."""
    with pytest.raises(ApiException) as e:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=x")
    assert _status(e.value)["message"] == "field label not supported: spec.bogus"


def test_read_missing_job_not_found(batch: client.BatchV1Api) -> None:
    """Reading a missing Job is a 404 Status."""
    with pytest.raises(ApiException) as e:
        batch.read_namespaced_job("ghost", "default")
    assert _status(e.value)["details"] == {"name": "ghost", "group": "batch", "kind": "jobs"}
