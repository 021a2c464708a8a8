"""The resource types the fake serves, with the names its URLs and messages use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    creatable: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """As in `jobs.batch "x" not found`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        """As in `Job.batch "x" is invalid`."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("pods", "Pod", "", "v1", True, True),
        Resource("configmaps", "ConfigMap", "", "v1", True, True),
        Resource("services", "Service", "", "v1", True, True),
        Resource("secrets", "Secret", "", "v1", True, True),
        Resource("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", True, False),
        Resource("nodes", "Node", "", "v1", False, False),
        Resource("namespaces", "Namespace", "", "v1", False, False),
        Resource("jobs", "Job", "batch", "v1", True, True),
    )
}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES.values()}
