"""PATCH: merge, strategic merge and JSON patch; re-validation; garbage collection after."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import config_map, job, secret
from tests.kubeapi.lookups import raw_request

CM = "/api/v1/namespaces/default/configmaps/cfg"
MERGE = "application/merge-patch+json"


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def _owner(j: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": j.metadata.name, "uid": j.metadata.uid}


def test_owner_reference_added_by_merge_patch_is_garbage_collected(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """A ConfigMap adopted by merge patch after creation goes with its Job."""
    created = batch.create_namespaced_job("default", job("own"), field_validation="Strict")
    cm = core.create_namespaced_config_map(
        "default", config_map("cfg", {"a": "1"}), field_validation="Strict"
    )
    patched = core.patch_namespaced_config_map(
        "cfg",
        "default",
        {"metadata": {"ownerReferences": [_owner(created)]}, "data": {"b": "2"}},
        _content_type=MERGE,
    )
    assert patched.metadata.owner_references[0].uid == created.metadata.uid
    assert patched.data == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(cm.metadata.resource_version)
    assert patched.metadata.uid == cm.metadata.uid
    assert patched.metadata.creation_timestamp == cm.metadata.creation_timestamp
    owned = secret("sec", {"k": b"v"})
    owned["metadata"]["ownerReferences"] = [_owner(created)]
    core.create_namespaced_secret("default", owned, field_validation="Strict")
    batch.delete_namespaced_job("own", "default", propagation_policy="Background")
    cluster.wait_for(lambda: not cluster.objects("ConfigMap") and not cluster.objects("Secret"))


def test_merge_patch_null_deletes_and_strategic_merges_owner_references(
    core: client.CoreV1Api, batch: client.BatchV1Api
) -> None:
    """null deletes a key; a strategic merge patch merges ownerReferences by uid."""
    first = batch.create_namespaced_job("default", job("one"), field_validation="Strict")
    second = batch.create_namespaced_job("default", job("two"), field_validation="Strict")
    body = config_map("cfg", {"a": "1", "b": "2"})
    body["metadata"]["ownerReferences"] = [_owner(first)]
    core.create_namespaced_config_map("default", body, field_validation="Strict")
    out = core.patch_namespaced_config_map(
        "cfg", "default", {"data": {"a": None}}, _content_type=MERGE
    )
    assert out.data == {"b": "2"}
    out = core.patch_namespaced_config_map(
        "cfg", "default", {"metadata": {"ownerReferences": [_owner(second)]}}
    )  # the client's default for a dict body is a strategic merge patch
    assert [r.name for r in out.metadata.owner_references] == ["one", "two"]
    out = core.patch_namespaced_config_map(
        "cfg", "default", {"metadata": {"ownerReferences": [_owner(second)]}}, _content_type=MERGE
    )
    assert [r.name for r in out.metadata.owner_references] == ["two"]


def test_json_patch(core: client.CoreV1Api, cluster: FakeCluster) -> None:
    """RFC 6902 add/replace/remove/test; a failed test is a 422 and changes nothing."""
    core.create_namespaced_config_map(
        "default", config_map("cfg", {"a": "1", "b": "2"}), field_validation="Strict"
    )
    ops = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "one"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/metadata/labels", "value": {"app/x": "y"}},
    ]
    out = core.patch_namespaced_config_map("cfg", "default", ops)  # list body: json-patch
    assert (out.data, out.metadata.labels) == ({"a": "one"}, {"app/x": "y"})
    before = cluster.objects("ConfigMap")[0]["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map(
            "cfg", "default", [{"op": "test", "path": "/data/a", "value": "1"}]
        )
    assert e.value.status == 422
    assert cluster.objects("ConfigMap")[0]["metadata"]["resourceVersion"] == before


def test_unsupported_patch_content_type(cluster: FakeCluster) -> None:
    """A PATCH in any other media type is a 415 UnsupportedMediaType Status."""
    raw_request(cluster, "POST", "/api/v1/namespaces/default/configmaps", config_map("cfg"))
    code, status, _ = raw_request(cluster, "PATCH", CM, {"data": {"a": "b"}})
    assert (code, status["reason"], status["kind"]) == (415, "UnsupportedMediaType", "Status")
    assert status["message"].startswith("the body of the request was in an unknown format")


def test_patch_making_object_invalid_is_rejected(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """Patched objects are re-validated: 422 for invalid results and immutable fields."""
    core.create_namespaced_config_map("default", config_map("cfg"), field_validation="Strict")
    code, status, _ = raw_request(
        cluster, "PATCH", CM, {"data": {"bad key": "x"}}, content_type=MERGE
    )
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('ConfigMap "cfg" is invalid: data[bad key]')
    code, status, _ = raw_request(
        cluster, "PATCH", CM, {"metadata": {"uid": "other"}}, content_type=MERGE
    )
    assert code == 422
    assert 'metadata.uid: Invalid value: "other": field is immutable' in status["message"]
    code, status, _ = raw_request(
        cluster, "PATCH", CM + "?fieldValidation=Strict", {"bogus": 1}, content_type=MERGE
    )
    assert code == 400 and 'unknown field "bogus"' in status["message"]
    code, status, _ = raw_request(
        cluster, "PATCH", CM, {"metadata": {"name": "renamed"}}, content_type=MERGE
    )
    assert code == 400
    batch.create_namespaced_job("default", job("j"), field_validation="Strict")
    with pytest.raises(ApiException) as e:
        batch.patch_namespaced_job(
            "j", "default", {"spec": {"completions": 3}}, _content_type=MERGE
        )
    assert "spec.completions: Invalid value: 3: field is immutable" in _status(e.value)["message"]
    out = batch.patch_namespaced_job("j", "default", {"spec": {"suspend": True}})
    assert out.spec.suspend is True and out.metadata.generation == 2


def test_patch_secret_service_and_missing_object(
    core: client.CoreV1Api, cluster: FakeCluster
) -> None:
    """Secrets take stringData in a patch; an immutable Secret's data cannot change; 404s."""
    core.create_namespaced_secret("default", secret("s", {"a": b"1"}), field_validation="Strict")
    out = core.patch_namespaced_secret("s", "default", {"stringData": {"b": "2"}})
    assert sorted(out.data) == ["a", "b"] and out.string_data is None
    core.patch_namespaced_secret("s", "default", {"immutable": True}, _content_type=MERGE)
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_secret("s", "default", {"stringData": {"a": "9"}})
    assert (
        "data: Forbidden: field is immutable when `immutable` is set" in _status(e.value)["message"]
    )
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("ghost", "default", {"data": {}}, _content_type=MERGE)
    assert (e.value.status, _status(e.value)["message"]) == (404, 'configmaps "ghost" not found')
    svc = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    made = core.create_namespaced_service("default", svc, field_validation="Strict")
    out = core.patch_namespaced_service(
        "svc", "default", {"spec": {"selector": {"a": "c"}}}, _content_type=MERGE
    )
    assert out.spec.selector == {"a": "c"} and out.spec.cluster_ip == made.spec.cluster_ip
