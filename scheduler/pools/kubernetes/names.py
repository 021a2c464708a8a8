"""Names and labels of the objects of one federation job on a Kubernetes pool. Pure.

The Job, its headless Service and its ConfigMap share one name derived from the remote tag,
so a retried submission meets the objects of the first instead of making new ones. The name
is a DNS-1035 label short enough that `<name>-<index>` (the hostname Kubernetes gives pod
`index` of an Indexed Job) is a DNS label too, whatever the user called the job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from scheduler.domain import RemoteTag

__all__ = [
    "ATTEMPT_LABEL",
    "FEDERATION_LABEL",
    "INDEX_LABEL",
    "JOB_ID_LABEL",
    "JOB_LABEL",
    "JOB_NAME_ANNOTATION",
    "MAX_NAME",
    "TAG_ANNOTATION",
    "hostnames",
    "nodelist",
    "object_name",
    "tag_labels",
    "tag_of",
    "tag_selector",
]

FEDERATION_LABEL = "sfed.io/federation"
JOB_ID_LABEL = "sfed.io/job-id"
ATTEMPT_LABEL = "sfed.io/attempt"
JOB_LABEL = "sfed.io/job"  # the object name, on pods: selects the job's pods
TAG_ANNOTATION = "sfed.io/tag"
JOB_NAME_ANNOTATION = "sfed.io/job-name"  # the user's job name, unchanged
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"  # set by Kubernetes on Indexed pods

# 63 (a DNS label) - "-" - up to 5 index digits: room for 100,000 pods per job.
MAX_NAME = 57
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def object_name(tag: RemoteTag, job_name: str) -> str:
    """`<federation>-<job id>-<attempt>[-<job name as a DNS label>]`, at most MAX_NAME long.

    The federation name starts with a letter (config validation), so the result is a DNS-1035
    label as Services need; the prefix alone is unique per federation and attempt.
    """
    prefix = f"{tag.federation}-{tag.job_id}-{tag.attempt}"
    if len(prefix) > MAX_NAME:
        raise ValueError(f"{prefix!r} is longer than {MAX_NAME} characters")
    slug = _NOT_DNS.sub("-", job_name.lower()).strip("-")
    room = MAX_NAME - len(prefix) - 1
    slug = slug[:room].rstrip("-") if room > 0 else ""
    return f"{prefix}-{slug}" if slug else prefix


def tag_labels(tag: RemoteTag) -> dict[str, str]:
    return {
        FEDERATION_LABEL: tag.federation,
        JOB_ID_LABEL: str(tag.job_id),
        ATTEMPT_LABEL: str(tag.attempt),
    }


def tag_selector(tag: RemoteTag) -> str:
    """A label selector for the objects of exactly this attempt."""
    return ",".join(f"{k}={v}" for k, v in tag_labels(tag).items())


def tag_of(metadata: Mapping[str, object]) -> RemoteTag | None:
    """The remote tag an object carries in its annotations, or None."""
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping):
        return None
    text = annotations.get(TAG_ANNOTATION)
    return RemoteTag.parse(text) if isinstance(text, str) else None


def hostnames(name: str, nodes: int) -> list[str]:
    """The pods' hostnames in index order (Kubernetes names Indexed pods `<job>-<index>`)."""
    return [f"{name}-{index}" for index in range(nodes)]


def nodelist(name: str, nodes: int) -> str:
    """SLURM_JOB_NODELIST in Slurm's hostlist form: `name-[0-3]`, or `name-0` for one node."""
    return f"{name}-0" if nodes == 1 else f"{name}-[0-{nodes - 1}]"
