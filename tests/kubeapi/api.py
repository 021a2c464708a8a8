"""REST semantics: routing, create (decode, default, validate), read, list, delete, logs."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi import apierrors, conversion, defaults, garbage, patch
from tests.kubeapi.apierrors import ApiError
from tests.kubeapi.resources import RESOURCES, Resource
from tests.kubeapi.schema import RequiredFieldsMissing, decode
from tests.kubeapi.selectors import field_selector, labels_match, parse_label_selector
from tests.kubeapi.store import Obj, Store, random_suffix
from tests.kubeapi.validation import VALIDATORS, validate_update

_ROUTES = [
    re.compile(r"/api/(?P<v>v1)/(?P<res>[a-z]+)"),
    re.compile(r"/api/(?P<v>v1)/(?P<res>nodes|namespaces)/(?P<name>[^/]+)"),
    re.compile(r"/api/(?P<v>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>[a-z]+)"),
    re.compile(r"/api/(?P<v>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>[a-z]+)/(?P<name>[^/]+)"),
    re.compile(
        r"/api/(?P<v>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>pods)/(?P<name>[^/]+)/(?P<sub>log)"
    ),
    re.compile(r"/apis/(?P<g>batch)/(?P<v>v1)/(?P<res>jobs)"),
    re.compile(r"/apis/(?P<g>batch)/(?P<v>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>jobs)"),
    re.compile(
        r"/apis/(?P<g>batch)/(?P<v>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>jobs)/(?P<name>[^/]+)"
    ),
]
PATCHABLE = ("ConfigMap", "Secret", "Service", "Job")
JOB_DELETE_WARNING = (
    "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background"
    " to remove them or set propagationPolicy=Orphan to suppress this warning"
)


@dataclass
class LogFollow:
    """A log to stream as it grows (follow=true) until `running()` turns False."""

    path: Any  # pathlib.Path
    running: Any  # Callable[[], bool]
    limit: int | None = None


@dataclass
class Response:
    code: int
    body: Any  # dict -> JSON, bytes -> text/plain
    warnings: list[str] = field(default_factory=list)


class Api:
    """Dispatches one request; the caller holds the cluster lock."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.store = cluster.store

    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        *,
        content_type: str = "",
    ) -> Response:
        if path in ("/version", "/version/") and method == "GET":
            return Response(200, _version())
        for route in _ROUTES:
            m = route.fullmatch(path)
            if m:
                break
        else:
            raise apierrors.page_not_found()
        parts = m.groupdict()
        resource = RESOURCES.get(parts["res"])
        if resource is None or resource.group != (parts.get("g") or ""):
            raise apierrors.page_not_found()
        ns, name = parts.get("ns"), parts.get("name")
        if resource.namespaced != (ns is not None) and name is not None:
            raise apierrors.page_not_found()
        if not resource.namespaced and ns is not None:
            raise apierrors.page_not_found()
        if parts.get("sub") == "log":
            if method != "GET":
                raise apierrors.method_not_allowed(method)
            return self._log(ns or "", name or "", query)
        if name is None:
            if method == "GET":
                return self._list(resource, ns, query)
            if method == "POST" and ns is not None and resource.creatable:
                return self._create(resource, ns, query, body)
            raise apierrors.method_not_allowed(method)
        if method == "GET":
            return Response(200, self._get(resource, ns or "", name))
        if method == "DELETE" and resource.creatable:
            return self._delete(resource, ns or "", name, query, body)
        if method == "PATCH" and resource.kind in PATCHABLE:
            return self._patch(resource, ns or "", name, query, body, content_type)
        raise apierrors.method_not_allowed(method)

    def _get(self, resource: Resource, ns: str, name: str) -> Obj:
        obj = self.store.get(resource.kind, ns, name)
        if obj is None:
            raise apierrors.not_found(resource, name)
        return copy.deepcopy(obj)

    def _list(self, resource: Resource, ns: str | None, query: dict[str, str]) -> Response:
        reqs = parse_label_selector(query.get("labelSelector"))
        fields = field_selector(resource.kind, query.get("fieldSelector"))
        items = []
        for obj in self.store.list(resource.kind, ns):
            if labels_match(reqs, obj["metadata"].get("labels")) and fields(obj):
                item = copy.deepcopy(obj)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
        return Response(
            200,
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": items,
            },
        )

    def _decode(
        self, resource: Resource, obj: Any, query: dict[str, str]
    ) -> tuple[Obj, list[str], list[apierrors.FieldError]]:
        """Decode as the apiserver does: (object, warnings, missing required fields)."""
        if not isinstance(obj, dict):
            raise apierrors.bad_request("Object 'Kind' is missing in 'null'")
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        if obj["kind"] != resource.kind or obj["apiVersion"] != resource.api_version:
            raise apierrors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API"
                f" version ({resource.api_version})"
                if obj["apiVersion"] != resource.api_version
                else f"the kind in the data ({obj['kind']}) does not match the expected kind ({resource.kind})"
            )
        validation = query.get("fieldValidation", "Warn")
        if validation not in ("Strict", "Warn", "Ignore"):
            raise apierrors.bad_request(
                f"fieldValidation must be one of Ignore, Warn, Strict, got {validation}"
            )
        missing: list[apierrors.FieldError] = []
        try:
            obj, unknown = decode(resource, obj, strict=validation == "Strict")
        except RequiredFieldsMissing as e:
            missing, unknown = e.errors, []
        conversion.decode_bytes(resource, obj)
        conversion.convert(resource, obj)
        warnings = [f'unknown field "{u}"' for u in unknown] if validation == "Warn" else []
        return obj, warnings, missing

    def _create(self, resource: Resource, ns: str, query: dict[str, str], body: bytes) -> Response:
        try:
            obj = json.loads(body or b"null")
        except ValueError as e:
            raise apierrors.bad_request(f"json: cannot unmarshal: {e}") from None
        obj, warnings, missing = self._decode(resource, obj, query)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") and meta["namespace"] != ns:
            raise apierrors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        name = meta.get("name") or ""
        for server_set in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
        ):
            meta.pop(server_set, None)
        if self.store.get("Namespace", "", ns) is None:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )
        if missing:
            raise apierrors.invalid(resource, name, missing)
        # The uid is assigned before defaulting: a Job's generated selector names it.
        draft_uid = Store.new_uid()
        meta["uid"] = draft_uid
        self._default(resource, obj)
        errors = VALIDATORS[resource.kind](obj)
        if errors:
            raise apierrors.invalid(resource, name, errors)
        if self.store.get(resource.kind, ns, name) is not None:
            raise apierrors.already_exists(resource, name)
        if query.get("dryRun") == "All":
            return Response(201, obj, warnings)
        stored = self.store.add(resource.kind, obj, uid=draft_uid)
        self.cluster.changed()
        return Response(201, copy.deepcopy(stored), warnings)

    def _patch(
        self,
        resource: Resource,
        ns: str,
        name: str,
        query: dict[str, str],
        body: bytes,
        content_type: str,
    ) -> Response:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in patch.SUPPORTED:
            raise patch.unsupported_media_type()
        old = self.store.get(resource.kind, ns, name)
        if old is None:
            raise apierrors.not_found(resource, name)
        try:
            doc = json.loads(body or b"null")
        except ValueError as e:
            raise apierrors.bad_request(f"error decoding patch: {e}") from None
        patched = patch.apply(media_type, copy.deepcopy(old), doc)
        obj, warnings, missing = self._decode(resource, patched, query)
        meta = obj.setdefault("metadata", {})
        old_meta = old["metadata"]
        # checkName: the URL names the object; a patch may not rename or move it.
        if not meta.get("name"):
            meta["name"] = name
        elif meta["name"] != name:
            raise apierrors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if meta.get("namespace") and meta["namespace"] != ns:
            raise apierrors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = ns
        version = meta.get("resourceVersion")
        if version and version != old_meta["resourceVersion"]:
            raise apierrors.conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version"
                " and try again",
            )
        errors = list(missing)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            errors.append(
                apierrors.invalid_value("metadata.uid", meta["uid"], "field is immutable")
            )
        for server_set in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            meta.pop(server_set, None)
            if server_set in old_meta:
                meta[server_set] = old_meta[server_set]
        if resource.kind == "Service":
            # patchAllocatedValues: an unset clusterIP keeps the allocated one.
            spec = obj.setdefault("spec", {})
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old["spec"]["clusterIP"]
                spec.setdefault("clusterIPs", old["spec"].get("clusterIPs"))
        self._default(resource, obj)
        if "status" in old:  # status is a subresource: PATCH of the main resource keeps it
            obj["status"] = copy.deepcopy(old["status"])
        errors += VALIDATORS[resource.kind](obj) + validate_update(resource.kind, obj, old)
        if errors:
            raise apierrors.invalid(resource, name, errors)
        if "generation" in meta and obj.get("spec") != old.get("spec"):
            meta["generation"] += 1
        if query.get("dryRun") == "All":
            return Response(200, obj, warnings)
        self.store.replace(old, obj)
        self.cluster.changed()
        return Response(200, copy.deepcopy(old), warnings)

    def _default(self, resource: Resource, obj: Obj) -> None:
        if resource.kind == "Job":
            defaults.default_job(obj)
        elif resource.kind == "Pod":
            defaults.default_pod(obj)
        elif resource.kind == "Service":
            defaults.default_service(obj, self.cluster.allocate_service_ip)
        elif resource.kind == "Secret":
            defaults.default_secret(obj)

    def _delete(
        self, resource: Resource, ns: str, name: str, query: dict[str, str], body: bytes
    ) -> Response:
        options: dict[str, Any] = {}
        if body:
            try:
                options = json.loads(body) or {}
            except ValueError as e:
                raise apierrors.bad_request(f"json: cannot unmarshal DeleteOptions: {e}") from None
        obj = self.store.get(resource.kind, ns, name)
        if obj is None:
            raise apierrors.not_found(resource, name)
        expected_uid = (options.get("preconditions") or {}).get("uid")
        if expected_uid and expected_uid != obj["metadata"]["uid"]:
            raise apierrors.conflict(
                resource,
                name,
                f"Precondition failed: UID in precondition: {expected_uid}, UID in object meta: {obj['metadata']['uid']}",
            )
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        warnings = []
        if policy is None:
            # batch/v1 Jobs orphan their pods by default when deleted through the API.
            policy = "Orphan" if resource.kind == "Job" else "Background"
            if resource.kind == "Job":
                warnings.append(JOB_DELETE_WARNING)
        if policy not in ("Foreground", "Background", "Orphan"):
            raise apierrors.bad_request(f"propagationPolicy {policy} is not supported")
        grace_raw = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace = int(grace_raw) if grace_raw is not None else None
        gone = garbage.request_delete(
            self.store, resource.kind, obj, policy, grace, self.cluster.kubelet.has_process
        )
        self.cluster.changed()
        if gone and resource.kind != "Pod":
            details: dict[str, Any] = {"name": name}
            if resource.group:
                details["group"] = resource.group
            details |= {"kind": resource.plural, "uid": obj["metadata"]["uid"]}
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
            return Response(200, status, warnings)
        return Response(200, copy.deepcopy(obj), warnings)

    def _log(self, ns: str, name: str, query: dict[str, str]) -> Response:
        pod = self.store.get("Pod", ns, name)
        if pod is None:
            raise apierrors.not_found(RESOURCES["pods"], name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if not container:
            if len(names) != 1:
                raise apierrors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise apierrors.bad_request(f"container {container} is not valid for pod {name}")
        if not pod["spec"].get("nodeName"):
            raise apierrors.bad_request(f"pod {name} does not have a host assigned")
        path = self.cluster.kubelet.log_path(pod, container)
        if path is None:
            raise apierrors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        if query.get("follow") == "true":
            limit = query.get("limitBytes")
            return Response(
                200,
                LogFollow(
                    path,
                    lambda: self.cluster.kubelet.has_process(pod),
                    int(limit) if limit is not None else None,
                ),
            )
        data = path.read_bytes() if path.exists() else b""
        if query.get("tailLines") is not None:
            keep = int(query["tailLines"])
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-keep:]) if keep else b""
        if query.get("limitBytes") is not None:
            data = data[: int(query["limitBytes"])]
        return Response(200, data)


def _version() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
