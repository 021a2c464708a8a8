import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobSpec(_message.Message):
    __slots__ = ("script", "job_name", "nodes", "ntasks", "gres", "cpus_per_task", "mem_per_node_mb", "time_limit_min", "partition", "chdir", "output", "error", "environment", "requeue", "priority", "separate_error", "submit_dir", "gpu_type", "constraint")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    GRES_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    MEM_PER_NODE_MB_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_MIN_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    CHDIR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEUE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SEPARATE_ERROR_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_DIR_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    script: bytes
    job_name: str
    nodes: int
    ntasks: int
    gres: str
    cpus_per_task: int
    mem_per_node_mb: int
    time_limit_min: int
    partition: str
    chdir: str
    output: str
    error: str
    environment: _containers.ScalarMap[str, str]
    requeue: bool
    priority: int
    separate_error: bool
    submit_dir: str
    gpu_type: str
    constraint: str
    def __init__(self, script: _Optional[bytes] = ..., job_name: _Optional[str] = ..., nodes: _Optional[int] = ..., ntasks: _Optional[int] = ..., gres: _Optional[str] = ..., cpus_per_task: _Optional[int] = ..., mem_per_node_mb: _Optional[int] = ..., time_limit_min: _Optional[int] = ..., partition: _Optional[str] = ..., chdir: _Optional[str] = ..., output: _Optional[str] = ..., error: _Optional[str] = ..., environment: _Optional[_Mapping[str, str]] = ..., requeue: _Optional[bool] = ..., priority: _Optional[int] = ..., separate_error: _Optional[bool] = ..., submit_dir: _Optional[str] = ..., gpu_type: _Optional[str] = ..., constraint: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "user", "client_key")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    user: str
    client_key: str
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., user: _Optional[str] = ..., client_key: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id", "front_door")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FRONT_DOOR_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    front_door: str
    def __init__(self, job_id: _Optional[int] = ..., front_door: _Optional[str] = ...) -> None: ...

class AttemptInfo(_message.Message):
    __slots__ = ("number", "pool", "remote_id", "state", "exit_code", "reason", "nodelist", "created_at", "started_at", "ended_at", "outcome", "exit_signal")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NODELIST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXIT_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    number: int
    pool: str
    remote_id: str
    state: str
    exit_code: int
    reason: str
    nodelist: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    outcome: str
    exit_signal: int
    def __init__(self, number: _Optional[int] = ..., pool: _Optional[str] = ..., remote_id: _Optional[str] = ..., state: _Optional[str] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., nodelist: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., exit_signal: _Optional[int] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("id", "user", "state", "spec", "script_sha256", "script_bytes", "pool", "remote_id", "attempt", "exit_code", "reason", "cancel_requested", "submitted_at", "started_at", "ended_at", "attempts", "notes", "exit_signal")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_BYTES_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    EXIT_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    id: int
    user: str
    state: str
    spec: JobSpec
    script_sha256: str
    script_bytes: int
    pool: str
    remote_id: str
    attempt: int
    exit_code: int
    reason: str
    cancel_requested: bool
    submitted_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptInfo]
    notes: _containers.RepeatedScalarFieldContainer[str]
    exit_signal: int
    def __init__(self, id: _Optional[int] = ..., user: _Optional[str] = ..., state: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., script_sha256: _Optional[str] = ..., script_bytes: _Optional[int] = ..., pool: _Optional[str] = ..., remote_id: _Optional[str] = ..., attempt: _Optional[int] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[AttemptInfo, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., exit_signal: _Optional[int] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "user", "pool", "since", "until", "limit", "newest_first", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[str]
    user: str
    pool: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    newest_first: bool
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[str]] = ..., user: _Optional[str] = ..., pool: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., newest_first: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SignalJobRequest(_message.Message):
    __slots__ = ("job_id", "signal", "batch_only", "user")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ONLY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    signal: str
    batch_only: bool
    user: str
    def __init__(self, job_id: _Optional[int] = ..., signal: _Optional[str] = ..., batch_only: _Optional[bool] = ..., user: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "user")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    user: str
    def __init__(self, job_id: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_event_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    after_event_id: int
    def __init__(self, job_id: _Optional[int] = ..., after_event_id: _Optional[int] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("id", "job_id", "at", "kind", "message", "pool", "attempt", "job_state")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    id: int
    job_id: int
    at: _timestamp_pb2.Timestamp
    kind: str
    message: str
    pool: str
    attempt: int
    job_state: str
    def __init__(self, id: _Optional[int] = ..., job_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., pool: _Optional[str] = ..., attempt: _Optional[int] = ..., job_state: _Optional[str] = ...) -> None: ...

class ExplainJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class PoolVerdict(_message.Message):
    __slots__ = ("pool", "fits", "reason")
    POOL_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    pool: str
    fits: bool
    reason: str
    def __init__(self, pool: _Optional[str] = ..., fits: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("job_id", "state", "summary", "pool_reasons", "history", "verdicts")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    POOL_REASONS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    state: str
    summary: str
    pool_reasons: _containers.RepeatedScalarFieldContainer[str]
    history: _containers.RepeatedCompositeFieldContainer[JobEvent]
    verdicts: _containers.RepeatedCompositeFieldContainer[PoolVerdict]
    def __init__(self, job_id: _Optional[int] = ..., state: _Optional[str] = ..., summary: _Optional[str] = ..., pool_reasons: _Optional[_Iterable[str]] = ..., history: _Optional[_Iterable[_Union[JobEvent, _Mapping]]] = ..., verdicts: _Optional[_Iterable[_Union[PoolVerdict, _Mapping]]] = ...) -> None: ...

class StreamOutputRequest(_message.Message):
    __slots__ = ("job_id", "offset", "stderr", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    offset: int
    stderr: bool
    follow: bool
    def __init__(self, job_id: _Optional[int] = ..., offset: _Optional[int] = ..., stderr: _Optional[bool] = ..., follow: _Optional[bool] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("data", "offset", "attempt")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    attempt: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PoolInfo(_message.Message):
    __slots__ = ("name", "kind", "transport", "state", "reason", "partition", "nodes_total", "nodes_idle", "gpus_total", "gpus_free", "max_gpus_per_node", "price_per_gpu_hour", "weight", "jobs_active", "updated_at", "gpu_types", "features")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    NODES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NODES_IDLE_FIELD_NUMBER: _ClassVar[int]
    GPUS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    MAX_GPUS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    JOBS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    transport: str
    state: str
    reason: str
    partition: str
    nodes_total: int
    nodes_idle: int
    gpus_total: int
    gpus_free: int
    max_gpus_per_node: int
    price_per_gpu_hour: float
    weight: int
    jobs_active: int
    updated_at: _timestamp_pb2.Timestamp
    gpu_types: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., transport: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., partition: _Optional[str] = ..., nodes_total: _Optional[int] = ..., nodes_idle: _Optional[int] = ..., gpus_total: _Optional[int] = ..., gpus_free: _Optional[int] = ..., max_gpus_per_node: _Optional[int] = ..., price_per_gpu_hour: _Optional[float] = ..., weight: _Optional[int] = ..., jobs_active: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gpu_types: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolInfo]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolInfo, _Mapping]]] = ...) -> None: ...

class DrainPoolRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumePoolRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
