"""The kubelet: runs each bound pod's containers as local processes in their own namespaces.

The image is ignored: the host filesystem is the image. Each container runs as
`unshare --mount --uts --fork python podinit.py`, which makes mount propagation private,
bind-mounts the pod's volumes and /etc/hosts, sets the hostname and execs the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kubeapi import conversion, dns, names
from tests.kubeapi.store import Obj, Store, now_rfc3339

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PODINIT = Path(__file__).with_name("podinit.py")
RESTART_DELAY = 1.0  # stands in for CrashLoopBackOff (10 s and up in a real kubelet)


class NotReady(Exception):
    """A container cannot start yet; the message becomes the waiting state."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class ContainerRun:
    name: str
    image: str
    proc: subprocess.Popen[bytes] | None = None
    attempt: int = 0
    restarts: int = 0
    started_at: str | None = None
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}}
    )
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_at: float | None = None


@dataclass
class PodRun:
    uid: str
    dir: Path
    ip: str
    containers: list[ContainerRun]
    started: bool = False
    finished: bool = False
    term_sent: bool = False
    kill_at: float | None = None
    evicted: bool = False


def _expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) references, $$ escapes, unknown references kept: as the kubelet does."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_.\-][A-Za-z0-9_.\-]*)\)", sub, text)


class Kubelet:
    def __init__(self, store: Store, workdir: Path, api_port: int) -> None:
        self.store = store
        self.workdir = workdir
        self.api_port = api_port
        self.runs: dict[str, PodRun] = {}
        self.foreign: set[str] = set()  # add_pod pods: accounted for, never run
        self.pvc_dirs: dict[tuple[str, str], Path] = {}
        self._next_ip = 0
        self.hosts_dirty = False
        self._records: list[tuple[str, str]] = []
        self.events: list[tuple[str, str, str]] = []  # (pod, reason, message) warnings

    # --- queries -----------------------------------------------------------------------------

    def has_process(self, pod: Obj) -> bool:
        run = self.runs.get(pod["metadata"]["uid"])
        return bool(run and any(c.proc and c.proc.poll() is None for c in run.containers))

    def log_path(self, pod: Obj, container: str) -> Path | None:
        run = self.runs.get(pod["metadata"]["uid"])
        if not run:
            return None
        for c in run.containers:
            if c.name == container and c.started_at:
                return run.dir / "logs" / f"{c.name}-{c.attempt}.log"
        return None

    # --- lifecycle ---------------------------------------------------------------------------

    def tick(self) -> bool:
        changed = False
        live = {p["metadata"]["uid"]: p for p in self.store.list("Pod")}
        for uid in list(self.runs):
            if uid not in live:
                self._kill(self.runs.pop(uid), signal.SIGKILL)
                self.hosts_dirty = True
        for uid, pod in live.items():
            if uid in self.foreign or not pod["spec"].get("nodeName"):
                continue
            run = self.runs.get(uid)
            if run is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                run = self._admit(pod)
                changed = True
            if run.finished:
                continue
            if pod["metadata"].get("deletionTimestamp") or run.evicted:
                changed |= self._terminate(pod, run)
            elif not run.started:
                changed |= self._try_start(pod, run)
            else:
                changed |= self._poll(pod, run)
        # Services come and go independently of pods: DNS follows both, as cluster DNS does.
        records = dns.headless_records(self.store)
        if changed or self.hosts_dirty or records != self._records:
            self.write_hosts(records)
        return changed

    def _admit(self, pod: Obj) -> PodRun:
        ip = f"127.0.{1 + self._next_ip // 254}.{1 + self._next_ip % 254}"
        self._next_ip += 1
        meta = pod["metadata"]
        pod_dir = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        (pod_dir / "logs").mkdir(parents=True, exist_ok=True)
        (pod_dir / "volumes").mkdir(exist_ok=True)
        (pod_dir / "hosts").touch()
        containers = [
            ContainerRun(c["name"], c.get("image", "")) for c in pod["spec"]["containers"]
        ]
        run = PodRun(meta["uid"], pod_dir, ip, containers)
        self.runs[meta["uid"]] = run
        status = pod["status"]
        status.update(
            {
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": now_rfc3339(),
            }
        )
        self._publish(pod, run)
        return run

    def _try_start(self, pod: Obj, run: PodRun) -> bool:
        try:
            mounts = self._volumes(pod, run)
            envs = {c["name"]: self._env(pod, c) for c in pod["spec"]["containers"]}
        except NotReady as e:
            waiting = {"reason": e.reason, **({"message": e.message} if e.message else {})}
            changed = False
            for c in run.containers:
                if c.state != {"waiting": waiting}:
                    c.state = {"waiting": waiting}
                    changed = True
            if changed:
                self._publish(pod, run)
            return changed
        run.started = True
        self.write_hosts(
            dns.headless_records(self.store)
        )  # the pod's own entry must be there before its process starts
        for spec_c, c in zip(pod["spec"]["containers"], run.containers, strict=True):
            self._spawn(pod, run, spec_c, c, mounts, envs[c.name])
        self._publish(pod, run)
        return True

    def _spawn(
        self,
        pod: Obj,
        run: PodRun,
        spec_c: dict[str, Any],
        c: ContainerRun,
        all_mounts: dict[str, tuple[Path, bool]],
        env: dict[str, str],
    ) -> None:
        argv = [_expand(a, env) for a in (spec_c.get("command") or []) + (spec_c.get("args") or [])]
        mounts = []
        for m in spec_c.get("volumeMounts") or []:
            source, forced_ro = all_mounts[m["name"]]
            if m.get("subPath"):
                source = source / m["subPath"]
                if not source.exists():
                    source.mkdir(parents=True)
            mounts.append(
                {
                    "source": str(source),
                    "target": m["mountPath"],
                    "readOnly": bool(m.get("readOnly")) or forced_ro,
                }
            )
        pod_sc = pod["spec"].get("securityContext") or {}
        sc = spec_c.get("securityContext") or {}
        c.attempt += 1
        start_error = run.dir / f"{c.name}-{c.attempt}.start-error"
        launch = {
            "mounts": mounts,
            "hosts_file": str(run.dir / "hosts"),
            "hostname": dns.pod_hostname(pod),
            "working_dir": spec_c.get("workingDir") or "",
            "argv": argv,
            "env": env,
            "uid": sc.get("runAsUser", pod_sc.get("runAsUser")),
            "gid": sc.get("runAsGroup", pod_sc.get("runAsGroup")),
            "start_error": str(start_error),
        }
        spec_path = run.dir / f"{c.name}-{c.attempt}.json"
        spec_path.write_text(json.dumps(launch))
        log_path = run.dir / "logs" / f"{c.name}-{c.attempt}.log"
        c.started_at = now_rfc3339()
        if not argv:
            start_error.write_text("no command specified")
            c.proc = None
            self._exited(c, 128, run)
            return
        with open(log_path, "ab") as log:
            c.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--uts",
                    "--fork",
                    sys.executable,
                    "-I",
                    str(PODINIT),
                    str(spec_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        c.state = {"running": {"startedAt": c.started_at}}
        c.restart_at = None

    def _exited(self, c: ContainerRun, code: int, run: PodRun) -> None:
        start_error = run.dir / f"{c.name}-{c.attempt}.start-error"
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": c.started_at,
            "finishedAt": now_rfc3339(),
            "containerID": f"fake://{run.uid[:8]}-{c.name}-{c.attempt}",
        }
        if code == 128 and start_error.exists():
            terminated.update(reason="StartError", message=start_error.read_text())
        if (
            code > 128
            and c.proc is not None
            and c.proc.returncode is not None
            and c.proc.returncode < 0
        ):
            terminated["signal"] = code - 128
        c.state = {"terminated": terminated}

    def _returncode(self, c: ContainerRun) -> int | None:
        if c.proc is None:
            return None
        rc = c.proc.poll()
        if rc is None:
            return None
        return 128 - rc if rc < 0 else rc  # death by signal N reports 128+N

    def _poll(self, pod: Obj, run: PodRun) -> bool:
        changed = False
        policy = pod["spec"].get("restartPolicy", "Always")
        for spec_c, c in zip(pod["spec"]["containers"], run.containers, strict=True):
            if "running" in c.state:
                code = self._returncode(c)
                if code is None:
                    continue
                self._exited(c, code, run)
                changed = True
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    c.restart_at = time.monotonic() + RESTART_DELAY
            if c.restart_at is not None and time.monotonic() >= c.restart_at:
                c.last_state = c.state
                c.restarts += 1
                mounts = self._volumes(pod, run)
                self._spawn(pod, run, spec_c, c, mounts, self._env(pod, spec_c))
                changed = True
        if changed:
            self._publish(pod, run)
        return changed

    def _terminate(self, pod: Obj, run: PodRun) -> bool:
        alive = [c for c in run.containers if c.proc and c.proc.poll() is None]
        if alive:
            if not run.term_sent:
                run.term_sent = True
                grace = 0 if run.evicted else pod["metadata"].get("deletionGracePeriodSeconds", 30)
                run.kill_at = time.monotonic() + grace
                self._kill(run, signal.SIGTERM if grace else signal.SIGKILL)
            elif run.kill_at is not None and time.monotonic() >= run.kill_at:
                self._kill(run, signal.SIGKILL)
                run.kill_at = None
            return False
        for c in run.containers:
            code = self._returncode(c)
            if "running" in c.state and code is not None:
                self._exited(c, code, run)
            elif "waiting" in c.state:
                c.state = {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the pod was terminated",
                        "startedAt": None,
                        "finishedAt": now_rfc3339(),
                    }
                }
            c.restart_at = None
        run.finished = True
        self._publish(pod, run, final=True)
        return True

    def _kill(self, run: PodRun, sig: int) -> None:
        for c in run.containers:
            if c.proc and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, sig)

    def evict(self, pod: Obj) -> None:
        """Kubelet-pressure eviction: kill now, pod ends Failed/Evicted and stays."""
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None:
            pod["status"].update(
                phase="Failed", reason="Evicted", message="The node was low on resource: memory. "
            )
            self.store.touch(pod)
            return
        run.evicted = True

    def stop_all(self) -> None:
        for run in self.runs.values():
            self._kill(run, signal.SIGKILL)
        for run in self.runs.values():
            for c in run.containers:
                if c.proc:
                    c.proc.wait()

    # --- volumes, environment, hosts ---------------------------------------------------------

    def _volumes(self, pod: Obj, run: PodRun) -> dict[str, tuple[Path, bool]]:
        ns = pod["metadata"]["namespace"]
        out: dict[str, tuple[Path, bool]] = {}
        for v in pod["spec"].get("volumes") or []:
            target = run.dir / "volumes" / v["name"]
            if v.get("emptyDir") is not None:
                target.mkdir(exist_ok=True)
                out[v["name"]] = (target, False)
            elif v.get("configMap") is not None:
                src = v["configMap"]
                files = self._files("ConfigMap", ns, src.get("name", ""), src.get("optional"))
                out[v["name"]] = (self._key_volume("configmap", files, src, target), True)
            elif v.get("secret") is not None:
                src = v["secret"]
                files = self._files("Secret", ns, src.get("secretName", ""), src.get("optional"))
                out[v["name"]] = (self._key_volume("secret", files, src, target), True)
            elif v.get("persistentVolumeClaim") is not None:
                src = v["persistentVolumeClaim"]
                claim = self.pvc_dirs.get((ns, src["claimName"]))
                if claim is None:
                    raise NotReady(
                        "ContainerCreating", f'persistentvolumeclaim "{src["claimName"]}" not found'
                    )
                out[v["name"]] = (claim, bool(src.get("readOnly")))
            elif v.get("hostPath") is not None:
                path = Path(v["hostPath"]["path"])
                kind = v["hostPath"].get("type") or ""
                if not path.exists():
                    if kind not in ("", "DirectoryOrCreate"):
                        raise NotReady(
                            "ContainerCreating",
                            f"hostPath type check failed: {path} is not a directory",
                        )
                    path.mkdir(parents=True)
                out[v["name"]] = (path, False)
            else:
                raise NotReady(
                    "ContainerCreating",
                    f"volume {v['name']}: type not supported by the fake kubelet",
                )
        return out

    def _files(self, kind: str, ns: str, name: str, optional: bool | None) -> dict[str, bytes]:
        """The keys of a ConfigMap or Secret as bytes; NotReady when missing and not optional."""
        obj = self.store.get(kind, ns, name)
        if obj is None:
            if optional:
                return {}
            raise NotReady("ContainerCreating", f'{kind.lower()} "{name}" not found')
        if kind == "Secret":
            return conversion.decoded(obj.get("data"))
        files = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        return files | conversion.decoded(obj.get("binaryData"))

    def _key_volume(
        self, what: str, files: dict[str, bytes], source: dict[str, Any], target: Path
    ) -> Path:
        default_mode = source.get("defaultMode", 0o644)
        wanted: list[tuple[str, bytes, int]] = []
        if source.get("items"):
            for item in source["items"]:
                if item["key"] not in files:
                    if source.get("optional"):
                        continue
                    detail = "config key" if what == "configmap" else "secret key"
                    raise NotReady(
                        "ContainerCreating",
                        f"{what} references non-existent {detail}: {item['key']}",
                    )
                wanted.append((item["path"], files[item["key"]], item.get("mode", default_mode)))
        else:
            wanted = [(k, v, default_mode) for k, v in files.items()]
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for rel, data, mode in wanted:
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, mode)
        return target

    def _field(self, pod: Obj, path: str) -> str:
        meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
        simple = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": status.get("podIP", ""),
            "status.hostIP": status.get("hostIP", ""),
        }
        if path in simple:
            return simple[path]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if m:
            return (meta.get(m.group(1)) or {}).get(m.group(2), "")
        raise NotReady("CreateContainerConfigError", f'unsupported fieldPath: "{path}"')

    def _env(self, pod: Obj, c: dict[str, Any]) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env = {
            "PATH": PATH,
            "HOSTNAME": dns.pod_hostname(pod),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
        }
        # envFrom first, then env overrides it; only env values get $(VAR) expansion.
        for src in c.get("envFrom") or []:
            kind, ref = (
                ("Secret", src["secretRef"])
                if src.get("secretRef") is not None
                else ("ConfigMap", src.get("configMapRef") or {})
            )
            values = self._env_values(kind, ns, ref.get("name", ""), ref.get("optional"))
            if values is None:
                continue
            invalid = []
            for k, v in values.items():
                key = (src.get("prefix") or "") + k
                if names.env_var_name(key):
                    invalid.append(key)
                else:
                    env[key] = v
            if invalid:
                event = (
                    pod["metadata"]["name"],
                    "InvalidEnvironmentVariableNames",
                    f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {kind.lower()}"
                    f" {ns}/{ref.get('name')} were skipped since they are considered invalid"
                    " environment variable names.",
                )
                if event not in self.events:
                    self.events.append(event)
        for var in c.get("env") or []:
            source = var.get("valueFrom")
            if source is None:
                env[var["name"]] = _expand(var.get("value") or "", env)
            elif source.get("fieldRef"):
                env[var["name"]] = self._field(pod, source["fieldRef"]["fieldPath"])
            elif source.get("configMapKeyRef") or source.get("secretKeyRef"):
                kind = "ConfigMap" if source.get("configMapKeyRef") else "Secret"
                ref = source.get("configMapKeyRef") or source["secretKeyRef"]
                values = self._env_values(kind, ns, ref.get("name", ""), ref.get("optional"))
                if values is not None and ref["key"] in values:
                    env[var["name"]] = values[ref["key"]]
                elif not ref.get("optional"):
                    raise NotReady(
                        "CreateContainerConfigError",
                        f"couldn't find key {ref['key']} in {kind} {ns}/{ref.get('name')}",
                    )
            else:
                raise NotReady(
                    "CreateContainerConfigError",
                    f"env {var['name']}: source not supported by the fake kubelet",
                )
        return env

    def _env_values(
        self, kind: str, ns: str, name: str, optional: bool | None
    ) -> dict[str, str] | None:
        """A ConfigMap's data or a Secret's decoded data; None when missing and optional."""
        obj = self.store.get(kind, ns, name)
        if obj is None:
            if optional:
                return None
            raise NotReady("CreateContainerConfigError", f'{kind.lower()} "{name}" not found')
        if kind == "ConfigMap":
            return dict(obj.get("data") or {})
        # Go's string([]byte) keeps any bytes; surrogateescape carries them to execve.
        return {
            k: v.decode("utf-8", "surrogateescape")
            for k, v in conversion.decoded(obj.get("data")).items()
        }

    def write_hosts(self, records: list[tuple[str, str]]) -> None:
        self.hosts_dirty = False
        self._records = records
        for pod in self.store.list("Pod"):
            run = self.runs.get(pod["metadata"]["uid"])
            if run is not None:
                dns.write_in_place(run.dir / "hosts", dns.render_hosts(pod, run.ip, records))

    # --- status ------------------------------------------------------------------------------

    def _publish(self, pod: Obj, run: PodRun, final: bool = False) -> None:
        status = pod["status"]
        policy = pod["spec"].get("restartPolicy", "Always")
        statuses = []
        for c in run.containers:
            running = "running" in c.state
            entry: dict[str, Any] = {
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "ready": running,
                "started": running,
                "restartCount": c.restarts,
                "state": c.state,
                "lastState": c.last_state,
            }
            term = c.state.get("terminated") or c.state.get("running")
            if term is not None:
                entry["containerID"] = f"fake://{run.uid[:8]}-{c.name}-{c.attempt}"
            statuses.append(entry)
        status["containerStatuses"] = statuses
        codes = [
            c.state["terminated"]["exitCode"] for c in run.containers if "terminated" in c.state
        ]
        all_done = len(codes) == len(run.containers) and all(
            c.restart_at is None for c in run.containers
        )
        if all_done and (final or policy == "Never" or (policy == "OnFailure" and not any(codes))):
            status["phase"] = "Succeeded" if not any(codes) else "Failed"
            run.finished = True
        elif run.started:
            status["phase"] = "Running"
        else:
            status["phase"] = "Pending"
        if run.evicted and final:
            status.update(
                phase="Failed", reason="Evicted", message="The node was low on resource: memory. "
            )
        all_running = run.started and all("running" in c.state for c in run.containers)
        terminal = status["phase"] in ("Succeeded", "Failed")
        _set_conditions(
            pod,
            {
                "PodReadyToStartContainers": (not terminal, None),
                "Initialized": (True, None),
                "Ready": (
                    all_running and not terminal,
                    "PodCompleted" if terminal else "ContainersNotReady",
                ),
                "ContainersReady": (
                    all_running and not terminal,
                    "PodCompleted" if terminal else "ContainersNotReady",
                ),
            },
        )
        self.store.touch(pod)


def _set_conditions(pod: Obj, wanted: dict[str, tuple[bool, str | None]]) -> None:
    current = {c["type"]: c for c in pod["status"].get("conditions") or []}
    for ctype, (ok, reason) in wanted.items():
        value = "True" if ok else "False"
        old = current.get(ctype)
        if old is not None and old["status"] == value:
            continue
        cond: dict[str, Any] = {
            "type": ctype,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
        if not ok and reason:
            cond["reason"] = reason
        current[ctype] = cond
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    rest = [c for t, c in current.items() if t not in order]
    pod["status"]["conditions"] = [current[t] for t in order if t in current] + rest
