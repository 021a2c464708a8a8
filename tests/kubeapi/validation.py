"""Semantic validation the apiserver applies after defaulting (pkg/apis/*/validation)."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.kubeapi import names
from tests.kubeapi.apierrors import (
    FieldError,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from tests.kubeapi.quantity import format_quantity, parse_quantity

Errors = list[FieldError]
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_CONFIGMAP_BYTES = 1024 * 1024
_NATIVE_RESOURCES = {"cpu", "memory", "ephemeral-storage", "pods", "storage"}
_OVERCOMMITABLE = {"cpu", "memory", "ephemeral-storage"}


def _each(errs: Errors, field: str, value: str, check: Callable[[str], list[str]]) -> None:
    for msg in check(value):
        errs.append(invalid_value(field, value, msg))


def validate_metadata(meta: dict[str, Any], name_check: Callable[[str], list[str]]) -> Errors:
    errs: Errors = []
    name = meta.get("name") or ""
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        _each(errs, "metadata.name", name, name_check)
    errs += validate_labels(meta.get("labels") or {}, "metadata.labels")
    errs += _validate_owner_references(meta.get("ownerReferences") or [])
    annotations = meta.get("annotations") or {}
    for key in annotations:
        _each(errs, "metadata.annotations", key, names.qualified_name)
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        errs.append(
            FieldError(
                "TooLong",
                "metadata.annotations",
                detail=f"must have at most {MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    return errs


def _validate_owner_references(refs: list[dict[str, Any]]) -> Errors:
    errs: Errors = []
    where = "metadata.ownerReferences"
    for ref in refs:
        version = (ref.get("apiVersion") or "").rsplit("/", 1)[-1]
        if not version:
            errs.append(
                invalid_value(
                    f"{where}.apiVersion", ref.get("apiVersion", ""), "version must not be empty"
                )
            )
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(invalid_value(f"{where}.{key}", ref.get(key, ""), "must not be empty"))
    controllers = [r for r in refs if r.get("controller")]
    if len(controllers) > 1:
        listed = ", ".join(
            f"{{{r.get('apiVersion')} {r.get('kind')} {r.get('name')} {r.get('uid')}}}"
            for r in controllers
        )
        errs.append(
            invalid_value(
                where,
                refs,
                f'Only one reference can have Controller set to true. Found "true" in references for {listed}',
            )
        )
    return errs


def validate_labels(labels: dict[str, str], field: str) -> Errors:
    errs: Errors = []
    for key, value in labels.items():
        _each(errs, field, key, names.qualified_name)
        _each(errs, field, value, names.label_value)
    return errs


def _quantities(
    resources: dict[str, Any], kind: str, field: str, errs: Errors
) -> dict[str, Decimal]:
    parsed = {}
    for res_name, raw in (resources.get(kind) or {}).items():
        value = parse_quantity(raw)  # decode already rejected unparsable quantities
        where = f"{field}.{kind}[{res_name}]"
        if value < 0:
            errs.append(invalid_value(where, str(raw), "must be greater than or equal to 0"))
        if (
            res_name not in _NATIVE_RESOURCES
            and "/" in res_name
            and value != value.to_integral_value()
        ):
            errs.append(invalid_value(where, str(raw), "must be an integer"))
        parsed[res_name] = value
    return parsed


def validate_resources(resources: dict[str, Any], field: str) -> Errors:
    errs: Errors = []
    limits = _quantities(resources, "limits", field, errs)
    requests = _quantities(resources, "requests", field, errs)
    for res_name, req in requests.items():
        limit = limits.get(res_name)
        extended = res_name not in _OVERCOMMITABLE
        if limit is None:
            if extended and res_name not in _NATIVE_RESOURCES:
                errs.append(
                    required(
                        f"{field}.limits", "Limit must be set for non overcommitable resources"
                    )
                )
            continue
        if extended and req != limit:
            errs.append(
                invalid_value(
                    f"{field}.requests",
                    format_quantity(req),
                    f"must be equal to {res_name} limit of {format_quantity(limit)}",
                )
            )
        elif req > limit:
            errs.append(
                invalid_value(
                    f"{field}.requests",
                    format_quantity(req),
                    f"must be less than or equal to {res_name} limit of {format_quantity(limit)}",
                )
            )
    return errs


def _validate_env(env: list[dict[str, Any]], field: str) -> Errors:
    errs: Errors = []
    for i, var in enumerate(env):
        where = f"{field}[{i}]"
        if not var.get("name"):
            errs.append(required(f"{where}.name"))
        else:
            _each(errs, f"{where}.name", var["name"], names.env_var_name)
        source = var.get("valueFrom")
        if source is not None:
            if var.get("value"):
                errs.append(
                    invalid_value(
                        f"{where}.valueFrom", "", "may not be specified when `value` is not empty"
                    )
                )
            kinds = [
                k
                for k in (
                    "fieldRef",
                    "resourceFieldRef",
                    "configMapKeyRef",
                    "secretKeyRef",
                    "fileKeyRef",
                )
                if source.get(k)
            ]
            if len(kinds) != 1:
                errs.append(
                    invalid_value(
                        f"{where}.valueFrom",
                        "",
                        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                    )
                )
    return errs


def _validate_env_from(sources: list[dict[str, Any]], field: str) -> Errors:
    errs: Errors = []
    for i, src in enumerate(sources):
        where = f"{field}[{i}]"
        if src.get("prefix"):
            _each(errs, f"{where}.prefix", src["prefix"], names.env_var_name)
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if not refs:
            errs.append(
                invalid_value(where, "", "must specify one of: `configMapRef` or `secretRef`")
            )
        elif len(refs) > 1:
            errs.append(
                invalid_value(where, "", "may not have more than one field specified at a time")
            )
        for k in refs:
            ref_name = src[k].get("name") or ""
            if not ref_name:
                errs.append(required(f"{where}.{k}.name"))
            else:
                _each(errs, f"{where}.{k}.name", ref_name, names.dns1123_subdomain)
    return errs


def _validate_container(c: dict[str, Any], field: str, volumes: set[str]) -> Errors:
    errs: Errors = []
    if not c.get("name"):
        errs.append(required(f"{field}.name"))
    else:
        _each(errs, f"{field}.name", c["name"], names.dns1123_label)
    if not c.get("image"):
        errs.append(required(f"{field}.image"))
    errs += _validate_env(c.get("env") or [], f"{field}.env")
    errs += _validate_env_from(c.get("envFrom") or [], f"{field}.envFrom")
    errs += validate_resources(c.get("resources") or {}, f"{field}.resources")
    seen_paths: set[str] = set()
    for j, mount in enumerate(c.get("volumeMounts") or []):
        where = f"{field}.volumeMounts[{j}]"
        if not mount.get("name"):
            errs.append(required(f"{where}.name"))
        elif mount["name"] not in volumes:
            errs.append(FieldError("NotFound", f"{where}.name", mount["name"]))
        path = mount.get("mountPath") or ""
        if not path:
            errs.append(required(f"{where}.mountPath"))
        elif path in seen_paths:
            errs.append(invalid_value(f"{where}.mountPath", path, "must be unique"))
        seen_paths.add(path)
        sub = mount.get("subPath") or ""
        if sub.startswith("/") or ".." in sub.split("/"):
            errs.append(
                invalid_value(f"{where}.subPath", sub, "must be a relative path without '..'")
            )
    for j, port in enumerate(c.get("ports") or []):
        number = port.get("containerPort")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errs.append(
                invalid_value(
                    f"{field}.ports[{j}].containerPort",
                    number,
                    "must be between 1 and 65535, inclusive",
                )
            )
    wd = c.get("workingDir")
    if wd is not None and wd and not wd.startswith("/"):
        pass  # the apiserver accepts relative working dirs; the runtime resolves them
    return errs


def _validate_key_to_paths(items: list[dict[str, Any]], field: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not item.get("key"):
            errs.append(required(f"{where}.key"))
        path = item.get("path") or ""
        if not path:
            errs.append(required(f"{where}.path"))
        elif path.startswith("/"):
            errs.append(invalid_value(f"{where}.path", path, "must be a relative path"))
        elif ".." in path.split("/"):
            errs.append(invalid_value(f"{where}.path", path, "must not contain '..'"))
        mode = item.get("mode")
        if mode is not None and not 0 <= mode <= 0o777:
            errs.append(
                invalid_value(
                    f"{where}.mode",
                    mode,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                )
            )
    return errs


_VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "configMap",
    "persistentVolumeClaim",
    "secret",
    "projected",
    "downwardAPI",
    "nfs",
    "csi",
    "ephemeral",
    "image",
)


def _validate_volume(v: dict[str, Any], field: str) -> Errors:
    errs: Errors = []
    sources = [s for s in _VOLUME_SOURCES if v.get(s) is not None]
    if not sources:
        errs.append(required(field, "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden(f"{field}.{sources[1]}", "may not specify more than 1 volume type"))
    for source, name_field in (("configMap", "name"), ("secret", "secretName")):
        spec = v.get(source)
        if spec is None:
            continue
        if not spec.get(name_field):
            errs.append(required(f"{field}.{source}.{name_field}"))
        errs += _validate_key_to_paths(spec.get("items") or [], f"{field}.{source}.items")
        mode = spec.get("defaultMode")
        if mode is not None and not 0 <= mode <= 0o777:
            errs.append(
                invalid_value(
                    f"{field}.{source}.defaultMode",
                    mode,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                )
            )
    if v.get("hostPath") is not None and not (v["hostPath"].get("path") or ""):
        errs.append(required(f"{field}.hostPath.path"))
    pvc = v.get("persistentVolumeClaim")
    if pvc is not None and not pvc.get("claimName"):
        errs.append(required(f"{field}.persistentVolumeClaim.claimName"))
    return errs


def validate_pod_spec(spec: dict[str, Any], field: str) -> Errors:
    errs: Errors = []
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        where = f"{field}.volumes[{i}]"
        name = v.get("name") or ""
        if not name:
            errs.append(required(f"{where}.name"))
        else:
            _each(errs, f"{where}.name", name, names.dns1123_label)
            if name in volumes:
                errs.append(duplicate(f"{where}.name", name))
        volumes.add(name)
        errs += _validate_volume(v, where)
    containers = spec.get("containers") or []
    if not containers:
        errs.append(required(f"{field}.containers"))
    seen: set[str] = set()
    all_containers = [("initContainers", c) for c in spec.get("initContainers") or []]
    all_containers += [("containers", c) for c in containers]
    counters = {"initContainers": 0, "containers": 0}
    for group, c in all_containers:
        where = f"{field}.{group}[{counters[group]}]"
        counters[group] += 1
        errs += _validate_container(c, where, volumes)
        if c.get("name"):
            if c["name"] in seen:
                errs.append(duplicate(f"{where}.name", c["name"]))
            seen.add(c["name"])
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.append(
            not_supported(f"{field}.restartPolicy", policy or "", ["Always", "OnFailure", "Never"])
        )
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            _each(errs, f"{field}.{key}", spec[key], names.dns1123_label)
    searches = ((spec.get("dnsConfig") or {}).get("searches")) or []
    if len(searches) > 32:
        errs.append(
            invalid_value(
                f"{field}.dnsConfig.searches", searches, "must not have more than 32 search paths"
            )
        )
    for i, s in enumerate(searches):
        _each(errs, f"{field}.dnsConfig.searches[{i}]", s.rstrip("."), names.dns1123_subdomain)
    if spec.get("dnsPolicy") == "None" and not (spec.get("dnsConfig") or {}).get("nameservers"):
        errs.append(
            required(
                f"{field}.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when DNS policy is None",
            )
        )
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and grace < 0:
        errs.append(
            invalid_value(
                f"{field}.terminationGracePeriodSeconds",
                grace,
                "must be greater than or equal to 0",
            )
        )
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        errs.append(
            invalid_value(
                f"{field}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"
            )
        )
    errs += validate_labels(spec.get("nodeSelector") or {}, f"{field}.nodeSelector")
    for i, t in enumerate(spec.get("tolerations") or []):
        op = t.get("operator") or "Equal"
        if op not in ("Equal", "Exists"):
            errs.append(
                not_supported(f"{field}.tolerations[{i}].operator", op, ["Equal", "Exists"])
            )
        if op == "Exists" and t.get("value"):
            errs.append(
                invalid_value(
                    f"{field}.tolerations[{i}].operator",
                    t["value"],
                    "value must be empty when `operator` is 'Exists'",
                )
            )
        if not t.get("key") and op != "Exists":
            errs.append(
                invalid_value(
                    f"{field}.tolerations[{i}].operator",
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
    for i, tsc in enumerate(spec.get("topologySpreadConstraints") or []):
        where = f"{field}.topologySpreadConstraints[{i}]"
        if (tsc.get("maxSkew") or 0) <= 0:
            errs.append(
                invalid_value(f"{where}.maxSkew", tsc.get("maxSkew"), "must be greater than zero")
            )
        if tsc.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                not_supported(
                    f"{where}.whenUnsatisfiable",
                    tsc.get("whenUnsatisfiable"),
                    ["DoNotSchedule", "ScheduleAnyway"],
                )
            )
        if not tsc.get("topologyKey"):
            errs.append(required(f"{where}.topologyKey", "can not be empty"))
    anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
    for i, term in enumerate(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
        if not term.get("topologyKey"):
            errs.append(
                required(
                    f"{field}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[{i}].topologyKey",
                    "can not be empty",
                )
            )
    return errs


def validate_pod_template(template: dict[str, Any], field: str) -> Errors:
    meta = template.get("metadata") or {}
    errs = validate_labels(meta.get("labels") or {}, f"{field}.metadata.labels")
    return errs + validate_pod_spec(template.get("spec") or {}, f"{field}.spec")


def validate_pod(pod: dict[str, Any]) -> Errors:
    return validate_metadata(pod["metadata"], names.dns1123_subdomain) + validate_pod_spec(
        pod["spec"], "spec"
    )


def _job_name(value: str) -> list[str]:
    errs = names.dns1123_subdomain(value)
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    return errs


def validate_job(job: dict[str, Any]) -> Errors:
    errs = validate_metadata(job["metadata"], _job_name)
    spec = job.get("spec") or {}
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None and spec[key] < 0:
            errs.append(
                invalid_value(f"spec.{key}", spec[key], "must be greater than or equal to 0")
            )
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        errs.append(invalid_value("spec.activeDeadlineSeconds", ads, "must be greater than 0"))
    mode = spec.get("completionMode")
    if mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required("spec.completions", "when completion mode is Indexed"))
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    policy = tspec.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(
            not_supported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"])
        )
    errs += validate_pod_template(template, "spec.template")
    selector = spec.get("selector")
    labels = (template.get("metadata") or {}).get("labels") or {}
    uid = job["metadata"].get("uid", "")
    generated = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if selector is None:
        errs.append(required("spec.selector"))
    elif not spec.get("manualSelector") and selector != generated:
        errs.append(invalid_value("spec.selector", selector, "`selector` not auto-generated"))
    else:
        from tests.kubeapi.selectors import label_selector_matches

        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errs.append(
                invalid_value("spec.selector", selector, "empty selector is invalid for deployment")
            )
        elif not label_selector_matches(selector, labels):
            errs.append(
                invalid_value(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
    return errs


def validate_configmap(cm: dict[str, Any]) -> Errors:
    errs = validate_metadata(cm["metadata"], names.dns1123_subdomain)
    data = cm.get("data") or {}
    binary = cm.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        _each(errs, "data[" + key + "]", key, names.config_key)
        if key in binary:
            errs.append(
                invalid_value(f"data[{key}]", key, "duplicate of key present in binaryData")
            )
        total += len(value.encode())
    for key, value in binary.items():
        _each(errs, "binaryData[" + key + "]", key, names.config_key)
        try:
            total += len(base64.b64decode(value, validate=True))
        except ValueError:
            errs.append(invalid_value(f"binaryData[{key}]", "<binary>", "illegal base64 data"))
    if total > MAX_CONFIGMAP_BYTES:
        errs.append(
            FieldError("TooLong", "[]", detail=f"must have at most {MAX_CONFIGMAP_BYTES} bytes")
        )
    return errs


MAX_SECRET_BYTES = 1024 * 1024
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(secret: dict[str, Any]) -> Errors:
    """ValidateSecret; data is canonical base64 here (decoding rejected bad base64)."""
    errs = validate_metadata(secret["metadata"], names.dns1123_subdomain)
    data = secret.get("data") or {}
    total = 0
    for key, value in data.items():
        _each(errs, f"data[{key}]", key, names.config_key)
        total += len(base64.b64decode(value))
    if total > MAX_SECRET_BYTES:
        errs.append(
            FieldError("TooLong", "data", detail=f"must have at most {MAX_SECRET_BYTES} bytes")
        )
    kind = secret.get("type")
    if kind == "kubernetes.io/service-account-token":
        annotations = secret["metadata"].get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]"), required("data[password]")]
    elif kind in _SECRET_REQUIRED_KEYS:
        for key in _SECRET_REQUIRED_KEYS[kind]:
            if not (key in data if kind == "kubernetes.io/tls" else data.get(key)):
                errs.append(required(f"data[{key}]"))
    return errs


def _validate_immutable_data(
    new: dict[str, Any], old: dict[str, Any], fields: tuple[str, ...]
) -> Errors:
    errs: Errors = []
    if not old.get("immutable"):
        return errs
    detail = "field is immutable when `immutable` is set"
    if not new.get("immutable"):
        errs.append(forbidden("immutable", detail))
    for f in fields:
        if (new.get(f) or {}) != (old.get(f) or {}):
            errs.append(forbidden(f, detail))
    return errs


def _immutable(field: str, new: Any, old: Any) -> Errors:
    return [] if new == old else [invalid_value(field, new, "field is immutable")]


def validate_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> Errors:
    """The extra checks of ValidateXUpdate (ObjectMeta ones are done by the PATCH handler)."""
    if kind == "ConfigMap":
        return _validate_immutable_data(new, old, ("data", "binaryData"))
    if kind == "Secret":
        errs = _immutable("type", new.get("type"), old.get("type"))
        return errs + _validate_immutable_data(new, old, ("data",))
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if kind == "Service":
        return _immutable(
            "spec.clusterIPs[0]", new_spec.get("clusterIP"), old_spec.get("clusterIP")
        )
    if kind == "Job":
        errs: Errors = []
        for key in ("selector", "template", "completionMode", "completions"):
            errs += _immutable(f"spec.{key}", new_spec.get(key), old_spec.get(key))
        return errs
    return []


def validate_service(svc: dict[str, Any]) -> Errors:
    errs = validate_metadata(svc["metadata"], names.dns1035_label)
    spec = svc.get("spec") or {}
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    if cluster_ip and not headless:
        try:
            ipaddress.ip_address(cluster_ip)
        except ValueError:
            errs.append(
                invalid_value(
                    "spec.clusterIPs[0]",
                    cluster_ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff) or 'None'",
                )
            )
    ports = spec.get("ports") or []
    if not ports and not headless and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errs.append(
            not_supported(
                "spec.type",
                spec.get("type"),
                ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
            )
        )
    seen_names: set[str] = set()
    for i, port in enumerate(ports):
        where = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(required(f"{where}.name"))
        elif name:
            _each(errs, f"{where}.name", name, names.dns1123_label)
            if name in seen_names:
                errs.append(duplicate(f"{where}.name", name))
            seen_names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errs.append(
                invalid_value(f"{where}.port", number, "must be between 1 and 65535, inclusive")
            )
        if port.get("protocol") not in ("TCP", "UDP", "SCTP"):
            errs.append(
                not_supported(f"{where}.protocol", port.get("protocol"), ["SCTP", "TCP", "UDP"])
            )
        target = port.get("targetPort")
        if isinstance(target, int) and not 1 <= target <= 65535:
            errs.append(
                invalid_value(
                    f"{where}.targetPort", target, "must be between 1 and 65535, inclusive"
                )
            )
        elif isinstance(target, str):
            _each(errs, f"{where}.targetPort", target, names.dns1123_label)
    errs += validate_labels(spec.get("selector") or {}, "spec.selector")
    if spec.get("sessionAffinity") not in ("None", "ClientIP"):
        errs.append(
            not_supported("spec.sessionAffinity", spec.get("sessionAffinity"), ["ClientIP", "None"])
        )
    return errs


VALIDATORS: dict[str, Callable[[dict[str, Any]], Errors]] = {
    "Pod": validate_pod,
    "Job": validate_job,
    "ConfigMap": validate_configmap,
    "Service": validate_service,
    "Secret": validate_secret,
}
