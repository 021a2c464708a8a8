"""Cluster DNS emulated through each pod's /etc/hosts: headless-Service hostname records."""

from __future__ import annotations

from pathlib import Path

from tests.kubeapi.selectors import label_selector_matches
from tests.kubeapi.store import Obj, Store

CLUSTER_DOMAIN = "cluster.local"


def pod_hostname(pod: Obj) -> str:
    return pod["spec"].get("hostname") or pod["metadata"]["name"]


def _ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds
    )


def headless_records(store: Store) -> list[tuple[str, str]]:
    """(ip, fqdn) for every pod the endpoints controller would publish under a hostname.

    Like the real endpoints controller, only pods with spec.hostname set get a hostname record.
    """
    records = []
    for pod in store.list("Pod"):
        spec, status = pod["spec"], pod.get("status") or {}
        ns = pod["metadata"]["namespace"]
        sub, host, ip = spec.get("subdomain"), spec.get("hostname"), status.get("podIP")
        if not (sub and host and ip) or pod["metadata"].get("deletionTimestamp"):
            continue
        svc = store.get("Service", ns, sub)
        if svc is None or svc["spec"].get("clusterIP") != "None":
            continue
        selector = svc["spec"].get("selector")
        if not selector or not label_selector_matches(
            {"matchLabels": selector}, pod["metadata"].get("labels")
        ):
            continue
        if not (_ready(pod) or svc["spec"].get("publishNotReadyAddresses")):
            continue
        records.append((ip, f"{host}.{sub}.{ns}.svc.{CLUSTER_DOMAIN}"))
    return records


def search_domains(pod: Obj) -> list[str]:
    ns = pod["metadata"]["namespace"]
    own = ((pod["spec"].get("dnsConfig") or {}).get("searches")) or []
    cluster = [f"{ns}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
    return [d.rstrip(".") for d in own] + cluster


def render_hosts(pod: Obj, ip: str, records: list[tuple[str, str]]) -> str:
    host = pod_hostname(pod)
    sub = pod["spec"].get("subdomain")
    ns = pod["metadata"]["namespace"]
    own = f"{host}.{sub}.{ns}.svc.{CLUSTER_DOMAIN}\t{host}" if sub else host
    lines = [
        "# Kubernetes-managed hosts file (sfed fake cluster).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{ip}\t{own}",
        "# Emulated cluster DNS (headless services).",
    ]
    domains = search_domains(pod)
    taken: set[str] = {host}
    for peer_ip, fqdn in records:
        aliases = []
        for domain in domains:
            if fqdn.endswith("." + domain):
                alias = fqdn[: -len(domain) - 1]
                if alias not in taken:
                    aliases.append(alias)
                    taken.add(alias)
        lines.append("\t".join([peer_ip, fqdn, *aliases]))
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> None:
    """Rewrite without replacing the inode: the file is bind-mounted into the pod."""
    if path.exists() and path.read_text() == text:
        return
    with open(path, "r+" if path.exists() else "w") as f:
        f.seek(0)
        f.write(text)
        f.truncate()
