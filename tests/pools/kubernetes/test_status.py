"""Table-driven tests of scheduler.pools.kubernetes.status: an attempt's state from its Job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.domain import AttemptState, Outcome, RemoteTag
from scheduler.pools.kubernetes.status import remote_job
from tests.pools.kubernetes.builders import (
    T1,
    T2,
    T3,
    TAG,
    complete,
    condition,
    failed,
    job,
    pod,
    running,
    terminated,
    waiting,
)

NAME = "alpha-7-1"


def at(text: str) -> datetime:
    """An API server timestamp as the aware UTC datetime the module should give."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def disrupted(index: int, reason: str, **kwargs: Any) -> dict[str, Any]:
    """A pod the control plane took away: DisruptionTarget True with `reason`, then failed."""
    return pod(
        NAME,
        index,
        node_name=f"gpu-{index}",
        state=terminated(137),
        conditions=[
            condition(
                "DisruptionTarget",
                reason=reason,
                message="Kubernetes controlled disruption of the pod",
            ),
            condition("Ready", "False", reason="PodFailed"),
            condition("PodScheduled"),
        ],
        **kwargs,
    )


def evicted(index: int, message: str) -> dict[str, Any]:
    """A pod the kubelet evicted under node pressure (status.reason Evicted, no containers)."""
    return pod(
        NAME,
        index,
        node_name=f"gpu-{index}",
        phase="Failed",
        reason="Evicted",
        message=message,
        conditions=[condition("PodScheduled")],
    )


# --- COMPLETED -------------------------------------------------------------------------------


def test_complete_is_completed_with_exit_0() -> None:
    """A Job with condition Complete is COMPLETED with exit code 0."""
    pods = [pod(NAME, i, state=terminated(0)) for i in range(2)]
    got = remote_job(job(conditions=complete(), completion_time=T2), pods)
    assert (got.state, got.exit_code) == (AttemptState.COMPLETED, 0)


def test_complete_ended_at_is_the_completion_time() -> None:
    """A completed attempt ended at the Job's status.completionTime."""
    got = remote_job(job(conditions=complete(at=T1), completion_time=T3), [])
    assert got.ended_at == at(T3)


def test_complete_started_at_is_the_earliest_container_start() -> None:
    """A completed attempt started when its first container started."""
    pods = [
        pod(NAME, 0, state=terminated(0, started_at="2024-05-01T10:02:00Z")),
        pod(NAME, 1, state=terminated(0, started_at="2024-05-01T10:01:30Z")),
    ]
    got = remote_job(job(conditions=complete(), completion_time=T2), pods)
    assert got.started_at == at("2024-05-01T10:01:30Z")


def test_complete_wins_over_a_deletion_in_progress() -> None:
    """A finished Job that is being deleted keeps its end state."""
    got = remote_job(job(conditions=complete(), completion_time=T2, deletion_timestamp=T3), [])
    assert got.state is AttemptState.COMPLETED


# --- FAILED ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "exit_code"),
    [
        pytest.param(
            [pod(NAME, 0, state=terminated(3)), pod(NAME, 1, state=terminated(1))],
            3,
            id="pod 0's code",
        ),
        pytest.param(
            [pod(NAME, 1, state=terminated(1)), pod(NAME, 0, state=terminated(3))],
            3,
            id="pod 0's code, pods listed out of order",
        ),
        pytest.param(
            [pod(NAME, 0, state=terminated(0)), pod(NAME, 1, state=terminated(137))],
            137,
            id="a worker's code when pod 0 ended 0",
        ),
        pytest.param(
            [pod(NAME, 1, state=terminated(2))],
            2,
            id="a worker's code when pod 0 is missing",
        ),
        pytest.param(
            [pod(NAME, 0, state=running()), pod(NAME, 1, state=terminated(42))],
            42,
            id="a worker's code when pod 0 is still running",
        ),
        pytest.param(
            [pod(NAME, 0, state=terminated(0)), pod(NAME, 1, state=terminated(0))],
            None,
            id="none when every pod ended 0",
        ),
        pytest.param([], None, id="none without pods"),
    ],
)
def test_failed_exit_code(pods: list[dict[str, Any]], exit_code: int | None) -> None:
    """A failed attempt's exit code is pod 0's, else the first failed worker's."""
    got = remote_job(job(conditions=failed()), pods)
    assert (got.state, got.exit_code) == (AttemptState.FAILED, exit_code)


def test_failed_reason_carries_the_job_condition() -> None:
    """A Job that failed on its own says why, from its Failed condition."""
    got = remote_job(job(conditions=failed()), [pod(NAME, 0, state=terminated(1))])
    assert (
        got.reason == "failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"
    )


def test_failed_ended_at_is_the_condition_time() -> None:
    """A failed attempt ended when its Failed condition was set."""
    got = remote_job(job(conditions=failed(at=T3)), [pod(NAME, 0, state=terminated(1))])
    assert got.ended_at == at(T3)


def test_deadline_exceeded_is_the_time_limit() -> None:
    """A Job past activeDeadlineSeconds failed with "time limit reached"."""
    conditions = failed("DeadlineExceeded", "Job was active longer than specified deadline")
    got = remote_job(job(conditions=conditions), [pod(NAME, 0, state=terminated(143))])
    assert (got.state, got.reason) == (AttemptState.FAILED, "time limit reached")
    assert got.outcome is Outcome.TIMEOUT


def test_pod_failure_policy_on_disruption_is_preempted() -> None:
    """The Job's podFailurePolicy rule on DisruptionTarget (the evicted pod is gone): preempted."""
    message = (
        f"Pod ml/{NAME}-0-abcde has condition DisruptionTarget matching FailJob rule at index 0"
    )
    got = remote_job(job(conditions=failed("PodFailurePolicy", message)), [])
    assert (got.state, got.reason) == (AttemptState.FAILED, f"preempted: {message}")
    assert got.outcome is Outcome.EVICTED  # the condition no longer says who took the pod


def test_pod_failure_policy_on_other_conditions_is_a_failure() -> None:
    """A podFailurePolicy failure that is not a disruption is a plain failure."""
    message = f"Pod ml/{NAME}-0-abcde has condition ConfigIssue matching FailJob rule at index 1"
    got = remote_job(job(conditions=failed("PodFailurePolicy", message)), [])
    assert got.state is AttemptState.FAILED and not got.reason.startswith("preempted")
    assert got.outcome is Outcome.FAILED


@pytest.mark.parametrize("kind", ["Failed", "FailureTarget"])
def test_failure_target_is_treated_like_failed(kind: str) -> None:
    """FailureTarget (pods still terminating) already makes the attempt FAILED."""
    pods = [pod(NAME, 0, state=terminated(9)), pod(NAME, 1, state=running())]
    got = remote_job(job(conditions=failed(kind=kind)), pods)
    assert (got.state, got.exit_code, got.reason) == (
        AttemptState.FAILED,
        9,
        "failed (BackoffLimitExceeded: Job has reached the specified backoff limit)",
    )


DISRUPTION_REASONS = [
    "PreemptionByScheduler",
    "EvictionByEvictionAPI",
    "DeletionByTaintManager",
    "TerminationByKubelet",
]


@pytest.mark.parametrize("kind", ["Failed", "FailureTarget"])
@pytest.mark.parametrize("disruption", DISRUPTION_REASONS)
def test_disrupted_pod_is_preempted(kind: str, disruption: str) -> None:
    """A pod with a DisruptionTarget condition makes the failure a preemption."""
    conditions = failed("PodFailurePolicy", "Container main for pod ... failed", kind=kind)
    pods = [pod(NAME, 0, state=running()), disrupted(1, disruption)]
    got = remote_job(job(conditions=conditions), pods)
    assert got.state is AttemptState.FAILED
    assert got.reason.startswith("preempted:")


@pytest.mark.parametrize("disruption", DISRUPTION_REASONS)
def test_preempted_reason_names_the_pod(disruption: str) -> None:
    """The preemption reason names the pod that was taken away."""
    pods = [pod(NAME, 0, state=terminated(0)), disrupted(1, disruption)]
    got = remote_job(job(conditions=failed()), pods)
    assert "alpha-7-1-1-abcde" in got.reason


@pytest.mark.parametrize(
    ("disruption", "outcome"),
    [
        ("PreemptionByScheduler", Outcome.PREEMPTED),
        ("EvictionByEvictionAPI", Outcome.EVICTED),
        ("DeletionByTaintManager", Outcome.EVICTED),
        ("TerminationByKubelet", Outcome.EVICTED),
        ("DeletionByPodGC", Outcome.EVICTED),
    ],
)
def test_disruption_outcome(disruption: str, outcome: Outcome) -> None:
    """A scheduler's preemption is PREEMPTED; every other disruption is EVICTED."""
    got = remote_job(job(conditions=failed()), [disrupted(0, disruption)])
    assert got.outcome is outcome


def test_oom_killed_container_is_out_of_memory() -> None:
    """A failed Job whose container was OOMKilled ended OUT_OF_MEMORY."""
    oom = pod(NAME, 0, state=terminated(137, reason="OOMKilled"))
    got = remote_job(job(conditions=failed()), [oom])
    assert (got.state, got.exit_code, got.outcome) == (
        AttemptState.FAILED,
        137,
        Outcome.OUT_OF_MEMORY,
    )


def test_completed_outcome() -> None:
    """A complete Job ended COMPLETED."""
    done = remote_job(job(conditions=complete()), [])
    assert done.outcome is Outcome.COMPLETED


def test_reasons_of_each_disruption_differ() -> None:
    """Each DisruptionTarget reason gets its own wording."""
    reasons = {
        remote_job(job(conditions=failed()), [disrupted(0, d)]).reason for d in DISRUPTION_REASONS
    }
    assert len(reasons) == len(DISRUPTION_REASONS)


def test_unknown_disruption_is_preempted_too() -> None:
    """A DisruptionTarget reason the module does not know still reads as a preemption."""
    got = remote_job(job(conditions=failed()), [disrupted(0, "DeletionByPodGC")])
    assert got.reason.startswith("preempted:") and "DeletionByPodGC" in got.reason


def test_disruption_target_false_is_no_preemption() -> None:
    """A DisruptionTarget condition with status False is not a preemption."""
    the_pod = pod(
        NAME,
        0,
        state=terminated(1),
        conditions=[condition("DisruptionTarget", "False", reason="PreemptionByScheduler")],
    )
    got = remote_job(job(conditions=failed()), [the_pod])
    assert not got.reason.startswith("preempted:")


def test_kubelet_eviction_is_preempted() -> None:
    """A pod with status.reason Evicted makes the failure a preemption, with its message."""
    message = "The node was low on resource: memory. Threshold quantity: 100Mi."
    got = remote_job(job(conditions=failed()), [pod(NAME, 0, state=running()), evicted(1, message)])
    assert (got.state, got.reason.startswith("preempted:"), message in got.reason) == (
        AttemptState.FAILED,
        True,
        True,
    )


def test_preemption_wins_over_deadline() -> None:
    """A preempted pod explains the failure even when the Job also says DeadlineExceeded."""
    conditions = failed("DeadlineExceeded", "Job was active longer than specified deadline")
    got = remote_job(job(conditions=conditions), [disrupted(0, "PreemptionByScheduler")])
    assert got.reason.startswith("preempted:")


# --- CANCELLED -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param([], id="no pods"),
        pytest.param([pod(NAME, 0, state=running())], id="pod 0 running"),
        pytest.param([pod(NAME, 0, node_name=None)], id="pod 0 pending"),
    ],
)
def test_job_being_deleted_is_cancelled(pods: list[dict[str, Any]]) -> None:
    """A Job not finished with a deletionTimestamp is CANCELLED."""
    got = remote_job(job(deletion_timestamp=T3), pods)
    assert got.state is AttemptState.CANCELLED


def test_job_being_deleted_ended_at_its_deletion() -> None:
    """A Job being deleted ended at its deletionTimestamp."""
    assert remote_job(job(deletion_timestamp=T3), []).ended_at == at(T3)


# --- RUNNING ---------------------------------------------------------------------------------


def test_pod_0_running_is_running() -> None:
    """A Job whose pod 0 container runs is RUNNING."""
    pods = [pod(NAME, 0, state=running(T1)), pod(NAME, 1, state=running(T1))]
    assert remote_job(job(), pods).state is AttemptState.RUNNING


def test_running_started_at_is_the_container_start() -> None:
    """A running attempt started when its earliest container started."""
    pods = [
        pod(NAME, 0, state=running("2024-05-01T10:03:00Z")),
        pod(NAME, 1, state=running("2024-05-01T10:02:00Z")),
    ]
    assert remote_job(job(), pods).started_at == at("2024-05-01T10:02:00Z")


def test_running_has_no_end_and_no_exit_code() -> None:
    """A running attempt has neither an end time nor an exit code."""
    got = remote_job(job(), [pod(NAME, 0, state=running())])
    assert (got.ended_at, got.exit_code) == (None, None)


def test_a_pod_not_yet_bound_keeps_the_job_pending() -> None:
    """Pod 0 running while another pod waits for a node: not RUNNING (Slurm starts whole)."""
    pods = [pod(NAME, 0, state=running()), pod(NAME, 1, node_name=None)]
    assert remote_job(job(), pods).state is AttemptState.PENDING


def test_only_a_worker_running_is_not_running() -> None:
    """A worker running while pod 0 still starts is not yet RUNNING."""
    pods = [pod(NAME, 0, state=waiting("ContainerCreating")), pod(NAME, 1, state=running())]
    assert remote_job(job(), pods).state is AttemptState.PENDING


# --- PENDING ---------------------------------------------------------------------------------


def test_unschedulable_pods_are_pending_with_the_schedulers_message() -> None:
    """Pods the scheduler cannot place keep the attempt PENDING with the scheduler's word."""
    message = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    unschedulable = [condition("PodScheduled", "False", reason="Unschedulable", message=message)]
    pods = [pod(NAME, i, node_name=None, conditions=unschedulable) for i in range(2)]
    got = remote_job(job(), pods)
    assert (got.state, got.reason) == (AttemptState.PENDING, f"Unschedulable: {message}")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(
            waiting("ImagePullBackOff", 'Back-off pulling image "nvcr.io/nvidia/pytorch:bad"'),
            'ImagePullBackOff: Back-off pulling image "nvcr.io/nvidia/pytorch:bad"',
            id="ImagePullBackOff",
        ),
        pytest.param(
            waiting("ErrImagePull"),
            "ErrImagePull",
            id="a reason without message",
        ),
        pytest.param(
            waiting("CreateContainerConfigError", 'configmap "alpha-7-1" not found'),
            'CreateContainerConfigError: configmap "alpha-7-1" not found',
            id="CreateContainerConfigError",
        ),
        pytest.param(waiting("ContainerCreating"), "starting pods", id="ContainerCreating"),
        pytest.param(None, "starting pods", id="no container status yet"),
    ],
)
def test_waiting_container_reason(state: dict[str, Any] | None, expected: str) -> None:
    """A waiting container's reason (other than ContainerCreating) is the PENDING reason."""
    got = remote_job(job(), [pod(NAME, 0, state=state)])
    assert (got.state, got.reason) == (AttemptState.PENDING, expected)


def test_scheduler_word_wins_over_the_kubelets() -> None:
    """An unschedulable pod explains the wait before another pod's waiting container."""
    pods = [pod(NAME, 0, state=waiting("ImagePullBackOff")), pod(NAME, 1, node_name=None)]
    assert remote_job(job(), pods).reason.startswith("Unschedulable: 0/4 nodes are available")


def test_no_pods_is_pending_creating_pods() -> None:
    """A Job without pods yet is PENDING "creating pods"."""
    got = remote_job(job(), [])
    assert (got.state, got.reason) == (AttemptState.PENDING, "creating pods")


# --- identity: remote id, tag, nodelist -----------------------------------------------------


def test_remote_id_is_the_job_name() -> None:
    """The remote id is the Job's metadata.name."""
    assert remote_job(job("alpha-7-1-train"), []).remote_id == "alpha-7-1-train"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        pytest.param(TAG, TAG, id="annotated"),
        pytest.param(RemoteTag("beta", 12, 3), RemoteTag("beta", 12, 3), id="another tag"),
        pytest.param(None, None, id="not annotated"),
    ],
)
def test_tag_is_read_from_the_annotation(tag: RemoteTag | None, expected: RemoteTag | None) -> None:
    """The attempt's tag comes from the Job's sfed.io/tag annotation."""
    assert remote_job(job(tag=tag), []).tag == expected


def test_tag_annotation_wins_over_labels() -> None:
    """The tag is the annotation's, not rebuilt from the labels."""
    the_job = job(tag=TAG)
    the_job["metadata"]["labels"]["sfed.io/attempt"] = "9"
    assert remote_job(the_job, []).tag == TAG


@pytest.mark.parametrize(
    ("pods", "nodelist"),
    [
        pytest.param([], "", id="no pods"),
        pytest.param([pod(NAME, 0, node_name=None)], "", id="an unbound pod"),
        pytest.param([pod(NAME, 0, node_name="gpu-a")], "gpu-a", id="one pod"),
        pytest.param(
            [
                pod(NAME, 2, node_name="gpu-c"),
                pod(NAME, 0, node_name="gpu-b"),
                pod(NAME, 1, node_name="gpu-a"),
            ],
            "gpu-b,gpu-a,gpu-c",
            id="index order, not listing order",
        ),
        pytest.param(
            [
                pod(NAME, 0, node_name="gpu-a"),
                pod(NAME, 1, node_name="gpu-a"),
                pod(NAME, 2, node_name="gpu-b"),
            ],
            "gpu-a,gpu-b",
            id="without duplicates",
        ),
        pytest.param(
            [pod(NAME, 0, node_name="gpu-a"), pod(NAME, 1, node_name=None)],
            "gpu-a",
            id="bound pods only",
        ),
    ],
)
def test_nodelist(pods: list[dict[str, Any]], nodelist: str) -> None:
    """The nodelist is the pods' nodeNames in index order, without duplicates."""
    assert remote_job(job(), pods).nodelist == nodelist


@pytest.mark.parametrize(
    "the_job",
    [
        pytest.param(job(conditions=complete(), completion_time=T2), id="COMPLETED"),
        pytest.param(job(conditions=failed()), id="FAILED"),
        pytest.param(job(deletion_timestamp=T3), id="CANCELLED"),
        pytest.param(job(), id="PENDING"),
    ],
)
def test_tag_is_carried_in_every_state(the_job: dict[str, Any]) -> None:
    """The tag is read whatever state the attempt is in."""
    assert remote_job(the_job, []).tag == TAG
