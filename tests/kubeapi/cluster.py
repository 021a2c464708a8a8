"""FakeCluster: the API server, its controllers and the test-side helpers, behind one lock."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.kubeapi import garbage
from tests.kubeapi.api import Api, Response
from tests.kubeapi.certs import make_certs
from tests.kubeapi.defaults import default_pod
from tests.kubeapi.jobcontroller import JobController
from tests.kubeapi.kubelet import Kubelet
from tests.kubeapi.scheduler import Scheduler
from tests.kubeapi.server import ApiServer
from tests.kubeapi.store import Obj, Store, now_rfc3339

TICK = 0.05
DISRUPTION_MESSAGES = {
    "EvictionByEvictionAPI": "Eviction API: evicting",
    "PreemptionByScheduler": "default-scheduler: preempting to accommodate a higher priority pod",
    "DeletionByTaintManager": "Taint manager: deleting due to NoExecute taint",
    "TerminationByKubelet": "The node was low on resource: memory. ",
}


class FakeCluster:
    """A Kubernetes API server with job controller, scheduler and kubelet, for tests."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.lock = threading.RLock()
        self.store = Store()
        self.token = secrets.token_hex(16)
        self._requests: list[tuple[str, str]] = []
        self._service_ips = 0
        self._server: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self.kubeconfig = self.workdir / "kubeconfig"
        self.api = Api(self)
        self.scheduler = Scheduler(self.store)
        self.jobs = JobController(self.store, self._controller_delete)
        self.kubelet: Kubelet = Kubelet(self.store, self.workdir, 0)
        self.errors: list[BaseException] = []
        self.add_namespace("default")

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeCluster:
        ca, cert, key = make_certs(self.workdir / "pki")
        self._server = ApiServer(self, self.token, cert, key)
        self.kubelet.api_port = self._server.port
        self._write_kubeconfig(ca)
        self._server.start()
        self._thread = threading.Thread(target=self._loop, name="kubeapi-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self._server is not None:
            self._server.stop()
        with self.lock:
            self.kubelet.stop_all()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the cluster first"
        return f"https://127.0.0.1:{self._server.port}"

    def _write_kubeconfig(self, ca: Path) -> None:
        import base64

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                    },
                }
            ],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": "default"},
                }
            ],
            "current-context": "fake",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            try:
                with self.lock:
                    for _ in range(10):  # settle: run controllers until nothing changes
                        if not self._reconcile_once():
                            break
            except Exception as e:  # surfaced by wait_for so a broken controller fails tests
                self.errors.append(e)

    def _reconcile_once(self) -> bool:
        changed = self.scheduler.schedule()
        changed |= self.kubelet.tick()
        changed |= self.jobs.reconcile()
        changed |= garbage.collect(self.store, self.kubelet.has_process)
        return changed

    def changed(self) -> None:
        """Wake the controllers at once (after an API write)."""
        self._wake.set()

    def _controller_delete(self, kind: str, obj: Obj, policy: str, grace: int | None) -> None:
        garbage.request_delete(self.store, kind, obj, policy, grace, self.kubelet.has_process)

    # --- requests ----------------------------------------------------------------------------

    def record_request(self, method: str, path: str) -> None:
        with self.lock:
            self._requests.append((method, path))

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        *,
        content_type: str = "",
    ) -> Response:
        with self.lock:
            return self.api.dispatch(method, path, query, body, content_type=content_type)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self._requests)

    def allocate_service_ip(self) -> str:
        self._service_ips += 1
        return f"10.96.{self._service_ips // 254}.{1 + self._service_ips % 254}"

    # --- test-side helpers -------------------------------------------------------------------

    def add_namespace(self, name: str) -> None:
        with self.lock:
            ns = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self.store.add("Namespace", ns)

    def add_node(
        self,
        name: str,
        *,
        gpus: int = 8,
        cpus: int = 32,
        memory: str = "128Gi",
        labels: dict[str, str] | None = None,
        taints: list[dict[str, Any]] | None = None,
        ready: bool = True,
        unschedulable: bool = False,
    ) -> None:
        resources = {
            "cpu": str(cpus),
            "memory": memory,
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        if gpus:
            resources["nvidia.com/gpu"] = str(gpus)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    **(labels or {}),
                },
            },
            "spec": {"taints": list(taints or [])},
            "status": {
                "capacity": dict(resources),
                "allocatable": dict(resources),
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": name},
                ],
                "conditions": [],
            },
        }
        with self.lock:
            self.store.add("Node", node)
            self._apply_node_state(node, ready, unschedulable)
        self.changed()

    def set_node(
        self, name: str, *, ready: bool | None = None, unschedulable: bool | None = None
    ) -> None:
        with self.lock:
            node = self.store.get("Node", "", name)
            if node is None:
                raise KeyError(name)
            was_ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
            )
            self._apply_node_state(
                node,
                was_ready if ready is None else ready,
                bool(node["spec"].get("unschedulable")) if unschedulable is None else unschedulable,
            )
        self.changed()

    def _apply_node_state(self, node: Obj, ready: bool, unschedulable: bool) -> None:
        # The node lifecycle controller taints NotReady nodes, and cordoned ones, like this.
        managed = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unschedulable")
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") not in managed]
        if not ready:
            taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        if unschedulable:
            taints.append(
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "effect": "NoSchedule",
                    "timeAdded": now_rfc3339(),
                }
            )
            node["spec"]["unschedulable"] = True
        else:
            node["spec"].pop("unschedulable", None)
        node["spec"]["taints"] = taints
        if not taints:
            del node["spec"]["taints"]
        stamp = now_rfc3339()
        node["status"]["conditions"] = [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                "message": "kubelet is posting ready status"
                if ready
                else "Kubelet stopped posting node status.",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ]
        self.store.touch(node)

    def add_pvc(self, namespace: str, claim_name: str, local_dir: Path) -> None:
        pvc = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim_name, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeName": f"pv-{claim_name}",
            },
            "status": {
                "phase": "Bound",
                "accessModes": ["ReadWriteMany"],
                "capacity": {"storage": "1Gi"},
            },
        }
        with self.lock:
            self.store.add("PersistentVolumeClaim", pvc)
            self.kubelet.pvc_dirs[(namespace, claim_name)] = Path(local_dir)
        self.changed()

    def add_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        gpus: int = 0,
        cpus: str = "0",
        memory: str = "0",
        phase: str = "Running",
    ) -> None:
        requests = {"cpu": cpus, "memory": memory}
        if gpus:
            requests["nvidia.com/gpu"] = str(gpus)
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "foreign"}},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "main",
                        "image": "foreign",
                        "resources": {"requests": requests, "limits": dict(requests)},
                    }
                ],
            },
        }
        default_pod(pod)
        pod["status"]["phase"] = phase
        with self.lock:
            stored = self.store.add("Pod", pod)
            self.kubelet.foreign.add(stored["metadata"]["uid"])
        self.changed()

    def evict(
        self, namespace: str, pod_name: str, *, reason: str = "EvictionByEvictionAPI"
    ) -> None:
        with self.lock:
            pod = self.store.get("Pod", namespace, pod_name)
            if pod is None:
                raise KeyError(f"{namespace}/{pod_name}")
            stamp = now_rfc3339()
            pod["status"].setdefault("conditions", []).append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": reason,
                    "message": DISRUPTION_MESSAGES.get(reason, reason),
                    "lastProbeTime": None,
                    "lastTransitionTime": stamp,
                }
            )
            self.store.touch(pod)
            if reason == "TerminationByKubelet":
                self.kubelet.evict(pod)
            else:
                garbage.request_delete(
                    self.store, "Pod", pod, "Background", None, self.kubelet.has_process
                )
        self.changed()

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.store.list(kind, namespace))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.errors:
                raise RuntimeError("fake cluster controller failed") from self.errors[0]
            if predicate():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.05)
