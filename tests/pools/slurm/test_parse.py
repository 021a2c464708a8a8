"""Parsing of real Slurm 22.05 output (fixtures captured from the commands) into domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.domain import AttemptState, NodeSnapshot, Outcome, RemoteJob, RemoteTag
from scheduler.pools.slurm import parse

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


#: The marker `lab-beta-squeue-text-states.txt` was captured with (fixtures/README.md).
CAPTURE_MARKER = "~c0ffee00c0ffee00"


def captured_records() -> list[parse.SqueueRecord]:
    return parse.squeue_records(fixture_text("lab-beta-squeue-text-states.txt"), CAPTURE_MARKER)


def captured(job_id: str) -> RemoteJob:
    """The job `job_id` of the text capture (the first record when it is repeated)."""
    record = next(r for r in captured_records() if r.job_id == job_id)
    return parse.job_from_squeue(record)


def node_json(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "n1",
        "state": "idle",
        "state_flags": [],
        "cpus": 8,
        "alloc_cpus": 0,
        "real_memory": 16000,
        "alloc_memory": 0,
        "gres": "gpu:4",
        "gres_used": "gpu:0",
        "partitions": ["gpu"],
    }
    base.update(fields)
    return base


def record(**fields: str) -> parse.SqueueRecord:
    base = parse.SqueueRecord(
        job_id="42",
        state="RUNNING",
        exit_code="0",
        nodelist="n[1-2]",
        start_time="2026-11-23T19:47:50",
        end_time="NONE",
        reason="None",
        comment="sfed/fed/7/2",
    )
    return base._replace(**fields)


# -- load_json -------------------------------------------------------------------------------


def test_load_json_returns_the_list() -> None:
    """The requested list of a --json document is returned."""
    assert len(parse.load_json(fixture_text("probe-sinfo-busy.json"), "nodes")) == 3


def test_load_json_dead_controller_is_unreachable() -> None:
    """22.05 reports a dead controller with exit 0 and a non-empty `errors`: unreachable."""
    with pytest.raises(parse.UnreachableOutput, match="Unspecified error"):
        parse.load_json(fixture_text("probe-sinfo-dead-controller.json"), "nodes")


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"errors": [], "nodes": 3}'])
def test_load_json_rejects_garbage(text: str) -> None:
    """Output that is not a --json document is a SlurmOutputError, not unreachable."""
    with pytest.raises(parse.SlurmOutputError) as info:
        parse.load_json(text, "nodes")
    assert not isinstance(info.value, parse.UnreachableOutput)


# -- GRES ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gres", "count"),
    [
        ("gpu:4", 4),
        ("gpu:0", 0),
        ("gpu:2(IDX:0-1)", 2),
        ("gpu:2(IDX:0,2)", 2),
        ("gpu:a100:4(S:0-1)", 4),
        ("gpu:a100:2(IDX:0-1),gpu:v100:1(IDX:3)", 3),
        ("gpu:4,mps:400", 4),
        ("mps:400", 0),
        ("", 0),
        (None, 0),
        ("(null)", 0),
    ],
)
def test_gres_count(gres: str | None, count: int) -> None:
    """GPU counts are summed over every gpu entry of a GRES string, types included."""
    assert parse.gres_count(gres) == count


@pytest.mark.parametrize(
    ("gres", "gpu_type"),
    [
        pytest.param("gpu:4", "", id="untyped"),
        pytest.param("gpu:a100:4(S:0)", "a100", id="typed with sockets"),
        pytest.param("gpu:h100:8(S:0-1),mps:400", "h100", id="typed among other GRES"),
        pytest.param("gpu:a100", "a100", id="type alone"),
        pytest.param("gpu:a100:2(IDX:0-1),gpu:v100:1(IDX:3)", "a100,v100", id="two types"),
        pytest.param("gpu:a100:0", "", id="none of the type"),
        pytest.param("mps:400", "", id="no GPUs"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="absent"),
    ],
)
def test_gres_type(gres: str | None, gpu_type: str) -> None:
    """A node's GPU type comes from its gpu GRES entries; several types are joined by commas."""
    assert parse.gres_type(gres) == gpu_type


# -- nodes -----------------------------------------------------------------------------------


def test_nodes_of_the_captured_typed_cluster() -> None:
    """Lab beta with typed GPUs (gpu:h100:8) and features h100,ib, a job of 3 on beta-n2."""
    nodes = parse.load_json(fixture_text("lab-beta-sinfo-typed-busy.json"), "nodes")
    snapshots = parse.nodes_of_partition(nodes, "gpu")
    assert {(n.gpu_type, n.features) for n in snapshots} == {("h100", ("h100", "ib"))}
    busy = {n.name: n for n in snapshots}["beta-n2"]
    assert (busy.gpus_total, busy.gpus_free, busy.cpus_free, busy.mem_free_mb) == (8, 5, 14, 63000)


def test_node_gpu_type_and_features() -> None:
    """Typed GRES gives the node's GPU type; active features its features, sorted."""
    node = parse.node_from_json(
        node_json(gres="gpu:h100:8(S:0)", features="ib,h100", active_features="ib,h100")
    )
    assert (node.gpu_type, node.features, node.gpus_total) == ("h100", ("h100", "ib"), 8)


@pytest.mark.parametrize(
    ("fields", "features"),
    [
        pytest.param({"features": "a,b", "active_features": "a"}, ("a",), id="active ones count"),
        pytest.param({"features": "a,b"}, ("a", "b"), id="no active list: all"),
        pytest.param({"features": "", "active_features": ""}, (), id="none"),
        pytest.param({}, (), id="absent"),
    ],
)
def test_node_features(fields: dict[str, Any], features: tuple[str, ...]) -> None:
    """A node's features are its active features (its features when sinfo lists no active)."""
    assert parse.node_from_json(node_json(**fields)).features == features


def test_node_features_not_a_string_is_an_error() -> None:
    """Features that are not sinfo's comma-separated string are a SlurmOutputError."""
    with pytest.raises(parse.SlurmOutputError, match="features is not a string"):
        parse.node_from_json(node_json(active_features=["a"]))


def test_nodes_of_partition_reads_the_captured_busy_cluster() -> None:
    """A captured sinfo: a mixed node with 3 GPUs in use and a drained down node elsewhere."""
    nodes = parse.load_json(fixture_text("probe-sinfo-busy.json"), "nodes")
    assert parse.nodes_of_partition(nodes, "gpu") == (
        NodeSnapshot("p1", 4, 4, 8, 7, 16000, 15900, True),
        NodeSnapshot("p2", 4, 1, 8, 7, 16000, 15900, True),
    )


def test_nodes_of_partition_keeps_only_the_partition() -> None:
    """sinfo --json ignores --partition, so nodes of other partitions are filtered out here."""
    nodes = parse.load_json(fixture_text("probe-sinfo-busy.json"), "nodes")
    assert [n.name for n in parse.nodes_of_partition(nodes, "cpu")] == ["p3"]


def test_node_without_gres_has_no_gpus() -> None:
    """A node with `gres: ""` and `gres_used: "gpu:0"` (as 22.05 prints it) has 0 GPUs."""
    nodes = parse.load_json(fixture_text("probe-sinfo-busy.json"), "nodes")
    (p3,) = parse.nodes_of_partition(nodes, "cpu")
    assert (p3.gpus_total, p3.gpus_free, p3.schedulable) == (0, 0, False)


def test_node_free_resources() -> None:
    """Free = total - allocated, for GPUs, CPUs and memory."""
    node = parse.node_from_json(
        node_json(gres_used="gpu:2(IDX:0-1)", alloc_cpus=3, alloc_memory=1000, state="mixed")
    )
    assert node == NodeSnapshot("n1", 4, 2, 8, 5, 16000, 15000, True)


def test_node_free_never_negative() -> None:
    """Over-allocation (config_overrides) never yields negative free counts."""
    node = parse.node_from_json(node_json(gres_used="gpu:6", alloc_cpus=9, alloc_memory=20000))
    assert (node.gpus_free, node.cpus_free, node.mem_free_mb) == (0, 0, 0)


@pytest.mark.parametrize(
    ("state", "flags", "schedulable"),
    [
        ("idle", [], True),
        ("mixed", [], True),
        ("allocated", [], True),
        ("completing", [], True),
        ("idle", ["COMPLETING"], True),
        ("idle", ["DRAIN"], False),
        ("mixed", ["DRAIN"], False),
        ("allocated", ["DRAINING"], False),
        ("idle", ["NOT_RESPONDING"], False),
        ("idle", ["FAIL"], False),
        ("idle", ["POWERED_DOWN"], False),
        ("down", [], False),
        ("down", ["DRAIN"], False),
        ("future", [], False),
        ("unknown", [], False),
        ("error", [], False),
    ],
)
def test_node_schedulable(state: str, flags: list[str], schedulable: bool) -> None:
    """Only idle/mixed/allocated/completing nodes without a drain/down/fail flag take work."""
    assert (
        parse.node_from_json(node_json(state=state, state_flags=flags)).schedulable is schedulable
    )


def test_node_drained_in_capture_is_not_schedulable() -> None:
    """The captured `state: idle, state_flags: [DRAIN]` node is not schedulable."""
    nodes = parse.load_json(fixture_text("probe-sinfo-completing.json"), "nodes")
    flags = {n.name: n.schedulable for n in parse.nodes_of_partition(nodes, "cpu")}
    assert flags == {"p3": False}


def test_node_without_name_is_an_error() -> None:
    """A node record without a name is a SlurmOutputError."""
    with pytest.raises(parse.SlurmOutputError):
        parse.node_from_json(node_json(name=""))


# -- job states ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slurm", "state"),
    [
        ("PENDING", AttemptState.PENDING),
        ("CONFIGURING", AttemptState.PENDING),
        ("REQUEUED", AttemptState.PENDING),
        ("REQUEUE_HOLD", AttemptState.PENDING),
        ("SUSPENDED", AttemptState.PENDING),
        ("SPECIAL_EXIT", AttemptState.PENDING),
        ("RUNNING", AttemptState.RUNNING),
        ("COMPLETING", AttemptState.RUNNING),
        ("COMPLETED", AttemptState.COMPLETED),
        ("FAILED", AttemptState.FAILED),
        ("OUT_OF_MEMORY", AttemptState.FAILED),
        ("NODE_FAIL", AttemptState.FAILED),
        ("BOOT_FAIL", AttemptState.FAILED),
        ("DEADLINE", AttemptState.FAILED),
        ("TIMEOUT", AttemptState.FAILED),
        ("PREEMPTED", AttemptState.FAILED),
        ("CANCELLED", AttemptState.CANCELLED),
        ("SOMETHING_NEW", AttemptState.PENDING),
    ],
)
def test_state_of(slurm: str, state: AttemptState) -> None:
    """Slurm job states map onto attempt states; unknown ones are not terminal."""
    assert parse.state_of(slurm) is state


@pytest.mark.parametrize(
    ("slurm", "reason"),
    [
        ("TIMEOUT", "time limit reached"),
        ("PREEMPTED", "preempted"),
        ("OUT_OF_MEMORY", "out of memory"),
        ("NODE_FAIL", "node failure"),
        ("BOOT_FAIL", "node boot failure"),
        ("DEADLINE", "deadline reached"),
        ("FAILED", "failed (NonZeroExitCode)"),
        ("CANCELLED", "cancelled"),
    ],
)
def test_terminal_reasons(slurm: str, reason: str) -> None:
    """A terminal job carries a human reason for how it ended."""
    raw = record(state=slurm, reason="NonZeroExitCode", exit_code="256", end_time="N/A")
    assert parse.job_from_squeue(raw).reason == reason


@pytest.mark.parametrize(
    ("slurm", "outcome"),
    [
        ("COMPLETED", Outcome.COMPLETED),
        ("FAILED", Outcome.FAILED),
        ("CANCELLED", Outcome.CANCELLED),
        ("TIMEOUT", Outcome.TIMEOUT),
        ("DEADLINE", Outcome.TIMEOUT),
        ("OUT_OF_MEMORY", Outcome.OUT_OF_MEMORY),
        ("PREEMPTED", Outcome.PREEMPTED),
        ("NODE_FAIL", Outcome.NODE_FAIL),
        ("BOOT_FAIL", Outcome.NODE_FAIL),
        ("RUNNING", None),
        ("PENDING", None),
    ],
)
def test_terminal_outcomes(slurm: str, outcome: Outcome | None) -> None:
    """A terminal job says how it ended as an Outcome; a live one has none yet."""
    raw = record(state=slurm, reason="None", exit_code="256", end_time="N/A")
    assert parse.job_from_squeue(raw).outcome is outcome


@pytest.mark.parametrize(
    ("status", "code"), [(0, 0), (256, 1), (768, 3), (255 << 8, 255), (9, 137), (15, 143)]
)
def test_decode_wait_status(status: int, code: int) -> None:
    """squeue's raw wait status becomes a shell exit code (128+signal when signalled)."""
    assert parse.decode_wait_status(status) == code


# -- squeue text records ---------------------------------------------------------------------


def test_squeue_records_of_the_capture() -> None:
    """Every record of the capture is read, in order; a pending array's meta record repeats."""
    ids = [r.job_id for r in captured_records()]
    assert len(ids) == 17
    assert ids.count("110641") == 2
    assert len(set(ids)) == 16


def test_squeue_records_fields() -> None:
    """Each field is the raw text squeue printed, unpadded."""
    (timed_out,) = [r for r in captured_records() if r.job_id == "110628"]
    assert timed_out == parse.SqueueRecord(
        "110628",
        "TIMEOUT",
        "15",
        "beta-n1",
        "2026-11-23T19:47:50",
        "2026-11-23T19:49:07",
        "TimeLimit",
        "sfed/txtcap/1/1",
    )


def test_squeue_records_long_comment_is_whole() -> None:
    """A 206-character comment is printed whole (no size given: nothing is cut)."""
    (long,) = [r for r in captured_records() if r.job_id == "110640"]
    assert long.comment == "note: " + "x" * 200


def test_squeue_records_null_comment_is_empty() -> None:
    """squeue prints `(null)` for a job without a comment; that is an empty comment."""
    (bare,) = [r for r in captured_records() if r.job_id == "110639"]
    assert bare.comment == ""
    assert parse.job_from_squeue(bare).tag is None


def test_squeue_records_forged_comment_stays_in_its_record() -> None:
    """A comment holding `|`, newlines and fake records of another job is one comment."""
    records = captured_records()
    (forger,) = [r for r in records if r.job_id == "110642"]
    assert forger.comment.startswith("my | note\n110631|COMPLETED|0|")
    assert forger.comment.count("\n") == 2
    assert parse.job_from_squeue(forger).tag is None
    victims = [r for r in records if r.job_id == "110631"]
    assert [(v.state, v.exit_code, v.comment) for v in victims] == [
        ("FAILED", "768", "sfed/txtcap/4/1")
    ]


def test_squeue_records_reason_may_hold_bars() -> None:
    """The reason is the last `|`-separated field: a `|` in it stays in it."""
    marker = "~0123456789abcdef"
    text = f"7|PENDING|0||N/A|N/A|a|b, c{marker}x|y{marker}\n"
    (got,) = parse.squeue_records(text, marker)
    assert (got.reason, got.comment) == ("a|b, c", "x|y")


def test_squeue_records_empty_output() -> None:
    """No job at all: no output, no record."""
    assert parse.squeue_records("", "~0123456789abcdef") == []


@pytest.mark.parametrize(
    "text",
    [
        "JOBID STATE\n",
        "7|PENDING|0||N/A|N/A|None~0123456789abcdef\n",
        "7|PENDING|0||N/A|N/A|None~0123456789abcdefx~0123456789abcdef",
        "7|PENDING|0|N/A|N/A~0123456789abcdefx~0123456789abcdef\n",
        "7|PENDING|0||N/A|N/A|None~0123456789abcdefx\n",
    ],
    ids=["header", "no-comment-marker", "no-final-newline", "missing-field", "no-end-marker"],
)
def test_squeue_records_rejects_other_output(text: str) -> None:
    """Output not framed by the marker is a SlurmOutputError."""
    with pytest.raises(parse.SlurmOutputError):
        parse.squeue_records(text, "~0123456789abcdef")


def test_squeue_records_other_marker_is_not_a_record() -> None:
    """Output framed with another marker (another call's, a guess) is not read as records."""
    text = fixture_text("lab-beta-squeue-text-states.txt")
    with pytest.raises(parse.SlurmOutputError):
        parse.squeue_records(text, "~0123456789abcdef")


# -- jobs from the text capture --------------------------------------------------------------


def test_running_job_from_capture() -> None:
    """A running job: state, tag from the comment, node, start time in UTC, no end or exit."""
    running = captured("110629")
    assert (running.remote_id, running.state) == ("110629", AttemptState.RUNNING)
    assert running.tag == RemoteTag("txtcap", 2, 1)
    assert running.nodelist == "beta-n1"
    assert running.started_at == datetime(2026, 11, 23, 19, 47, 50, tzinfo=UTC)
    assert (running.ended_at, running.exit_code, running.reason) == (None, None, "")


def test_completed_two_node_job_from_capture() -> None:
    """A completed 2-node job: exit code 0, its hostlist, start and end as aware UTC times."""
    done = captured("110630")
    assert (done.state, done.exit_code, done.nodelist) == (
        AttemptState.COMPLETED,
        0,
        "beta-n[1-2]",
    )
    assert done.ended_at == datetime(2026, 11, 23, 19, 47, 50, tzinfo=UTC)
    assert done.ended_at is not None and done.ended_at.tzinfo is UTC


def test_failed_job_exit_code_from_capture() -> None:
    """`exit 3` shows as exit_code 768 and is reported as exit code 3."""
    failed = captured("110631")
    assert (failed.state, failed.exit_code) == (AttemptState.FAILED, 3)
    assert failed.reason == "failed (NonZeroExitCode)"


def test_signalled_job_exit_code_from_capture() -> None:
    """A batch script killed by SIGKILL (exit_code 9) is reported as exit code 137."""
    killed = captured("110632")
    assert (killed.state, killed.exit_code) == (AttemptState.FAILED, 137)


def test_timeout_job_from_capture() -> None:
    """A job past its time limit is FAILED with "time limit reached" and exit 128+SIGTERM."""
    timed_out = captured("110628")
    assert (timed_out.state, timed_out.reason) == (AttemptState.FAILED, "time limit reached")
    assert timed_out.exit_code == 143
    assert timed_out.ended_at == datetime(2026, 11, 23, 19, 49, 7, tzinfo=UTC)


def test_cancelled_running_job_from_capture() -> None:
    """A job cancelled while running is CANCELLED with its end time and 128+SIGTERM."""
    cancelled = captured("110633")
    assert (cancelled.state, cancelled.exit_code) == (AttemptState.CANCELLED, 143)
    assert cancelled.ended_at == datetime(2026, 11, 23, 19, 47, 51, tzinfo=UTC)


def test_cancelled_pending_job_never_started() -> None:
    """A job cancelled while pending has no nodes, no start time and no exit code."""
    cancelled = captured("110634")
    assert cancelled.state is AttemptState.CANCELLED
    assert (cancelled.nodelist, cancelled.started_at, cancelled.exit_code) == ("", None, None)


def test_held_job_is_pending_with_reason() -> None:
    """A held job is PENDING with Slurm's reason; its `N/A` times are no times."""
    held = captured("110635")
    assert (held.state, held.reason, held.started_at) == (
        AttemptState.PENDING,
        "JobHeldUser",
        None,
    )


def test_suspended_job_is_pending() -> None:
    """A suspended job is reported PENDING with reason "suspended"."""
    suspended = captured("110636")
    assert (suspended.state, suspended.reason) == (AttemptState.PENDING, "suspended")


def test_special_exit_job_is_pending_with_the_description() -> None:
    """A job requeued held in special exit is PENDING; the controller's description is kept."""
    special = captured("110637")
    assert (special.state, special.reason) == (
        AttemptState.PENDING,
        "special_exit (job requeued in held state)",
    )


def test_requeued_job_is_pending() -> None:
    """A requeued job waits for its begin time: PENDING, BeginTime, no start time yet."""
    requeued = captured("110638")
    assert (requeued.state, requeued.reason, requeued.started_at) == (
        AttemptState.PENDING,
        "BeginTime",
        None,
    )


def test_completing_job_with_exit_status_is_running() -> None:
    """A COMPLETING job (epilog still running) is RUNNING even though its exit is known."""
    completing = parse.job_from_squeue(record(state="COMPLETING", exit_code="1280"))
    assert (completing.state, completing.exit_code, completing.reason) == (
        AttemptState.RUNNING,
        None,
        "completing",
    )


@pytest.mark.parametrize("text", ["N/A", "Unknown", "None", "NONE", ""])
def test_no_time_is_none(text: str) -> None:
    """squeue's words for "no time" give no time."""
    done = parse.job_from_squeue(record(state="COMPLETED", start_time=text, end_time=text))
    assert (done.started_at, done.ended_at) == (None, None)


def test_negative_exit_status_is_unknown() -> None:
    """An exit status printed negative (NO_VAL through %d) is no exit code."""
    done = parse.job_from_squeue(record(state="FAILED", exit_code="-2", end_time="N/A"))
    assert done.exit_code is None


@pytest.mark.parametrize(
    "fields",
    [
        {"job_id": "x"},
        {"job_id": "12_3"},
        {"job_id": ""},
        {"state": "COMPLETED", "exit_code": "x"},
        {"state": "COMPLETED", "end_time": "19:47:50"},
        {"state": "RUNNING", "start_time": "Tomorr 19:47"},
    ],
)
def test_unreadable_job_is_an_error(fields: dict[str, str]) -> None:
    """A record whose id, exit status or a needed time cannot be read is a SlurmOutputError."""
    with pytest.raises(parse.SlurmOutputError):
        parse.job_from_squeue(record(**fields))


def test_foreign_comment_has_no_tag() -> None:
    """A job whose comment is not an sfed tag has tag None."""
    assert parse.job_from_squeue(record(comment="my own note")).tag is None


def test_empty_comment_has_no_tag() -> None:
    """A job without a comment has tag None."""
    assert parse.job_from_squeue(record(comment="")).tag is None


# -- sbatch, scontrol, messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "job_id"), [("123\n", "123"), ("123;beta\n", "123"), ("\n77\n", "77")]
)
def test_parse_sbatch_parsable(stdout: str, job_id: str) -> None:
    """`sbatch --parsable` prints `id` or `id;cluster`."""
    assert parse.parse_sbatch_parsable(stdout) == job_id


@pytest.mark.parametrize("stdout", ["", "Submitted batch job 12\n", "12;\n"])
def test_parse_sbatch_parsable_rejects_other_output(stdout: str) -> None:
    """Anything else is a SlurmOutputError."""
    with pytest.raises(parse.SlurmOutputError):
        parse.parse_sbatch_parsable(stdout)


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "sbatch: error: invalid partition specified: nope\n"
            "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
            "Invalid partition name specified",
        ),
        (
            "sbatch: error: Batch job submission failed: Requested node configuration is not "
            "available\n",
            "Requested node configuration is not available",
        ),
        ("sbatch: error: Batch script is empty!\n", "Batch script is empty!"),
        ("", "no message"),
    ],
)
def test_rejection_reason(stderr: str, reason: str) -> None:
    """The reason of a rejection is sbatch's "submission failed" line, else its first line."""
    assert parse.rejection_reason(stderr) == reason


@pytest.mark.parametrize(
    ("stderr", "unreachable"),
    [
        ("slurm_load_partitions: Unable to contact slurm controller (connect failure)", True),
        (
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
            "(connect failure)",
            True,
        ),
        ("squeue: error: Socket timed out on send/recv operation", True),
        ("sinfo: fatal: Could not establish a configuration source", True),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified", False),
        ("scancel: error: Invalid job id abc", False),
    ],
)
def test_is_unreachable_message(stderr: str, unreachable: bool) -> None:
    """Messages meaning "the controller did not answer" are told from refusals."""
    assert parse.is_unreachable_message(stderr) is unreachable


def test_lab_beta_capture_counts_a_3_gpu_job() -> None:
    """Captured on lab beta: --gres=gpu:3 -c 2 --mem=1000 on beta-n2 leaves 5 GPUs, 14 CPUs."""
    nodes = parse.load_json(fixture_text("lab-beta-sinfo-busy.json"), "nodes")
    snapshot = {n.name: n for n in parse.nodes_of_partition(nodes, "gpu")}
    assert snapshot["beta-n2"] == NodeSnapshot("beta-n2", 8, 5, 16, 14, 64000, 63000, True)
    assert [n.gpus_free for name, n in sorted(snapshot.items()) if name != "beta-n2"] == [8, 8, 8]


# -- dd (read_output) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "nothing"),
    [
        ("/bin/dd: failed to open '/spool/out-7.txt': No such file or directory\n", True),
        ("dd: failed to open '/spool/out-7.txt': No such file or directory\n", True),
        ("dd: failed to open '/spool/a'$'\\r''b': No such file or directory", True),
        ("/bin/dd: /spool/out-7.txt: cannot skip: Invalid argument\n", True),
        ("motd\ndd: failed to open '/x': No such file or directory\n", True),
        ("/bin/dd: failed to open '/spool/out-7.txt': Permission denied\n", False),
        ("dd: failed to open '/x: No such file or directory': Permission denied\n", False),
        ("dd: failed to open '/spool/f/x': Not a directory\n", False),
        ("/bin/dd: error reading '/spool': Is a directory\n", False),
        ("/bin/cat: /x: No such file or directory\n", False),
        ("dd: error reading '/x': Input/output error\n", False),
        ("dd: invalid number: '9223372036854775808': Value too large for defined data type", False),
        ("sh: 1: /bin/dd: not found\n", False),
        ("", False),
    ],
    ids=[
        "missing",
        "missing-bare-dd",
        "missing-escaped",
        "beyond-filesystem",
        "noise-first",
        "permission",
        "forged-path",
        "not-a-directory",
        "directory",
        "other-command",
        "io-error",
        "bad-number",
        "no-dd",
        "empty",
    ],
)
def test_dd_nothing_to_read(stderr: str, nothing: bool) -> None:
    """Only "no such file" and "cannot skip: Invalid argument" (dd 9.1, LC_ALL=C) mean b""."""
    assert parse.dd_nothing_to_read(stderr) is nothing


@pytest.mark.parametrize(
    ("status", "code", "signal"), [("768", 3, None), ("9", 137, 9), ("15", 143, 15), ("0", 0, None)]
)
def test_exit_signal_is_kept_beside_the_exit_code(
    status: str, code: int, signal: int | None
) -> None:
    """A script killed by a signal has the shell's exit code and the signal itself."""
    done = parse.job_from_squeue(record(state="FAILED", exit_code=status))
    assert (done.exit_code, done.exit_signal) == (code, signal)
