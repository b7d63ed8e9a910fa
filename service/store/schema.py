"""Tables: the append-only event log and the read models folded from it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The log. position is assigned by the writer under a lock, so it is dense and equals
# commit order on every backend (see eventlog.append).
events = Table(
    "events",
    metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("stream", String(200), nullable=False),
    # The event's place in its stream (1, 2, ...): a decision is appended with the stream
    # version it was decided on, and the unique index makes a second decision on the same
    # version fail in the database itself, across threads, processes and replicas. NULL for
    # agent traffic, which decides nothing (NULLs never collide in a unique index).
    Column("stream_version", Integer, nullable=True),
    Column("recorded_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False, default=1),
    Column("payload", Text, nullable=False),
    UniqueConstraint("stream", "stream_version", name="events_stream_version"),
)

# --- read models (projections); every one is rebuilt bit-for-bit by `promptd replay` -------

projection_positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

prompts = Table(
    "prompts",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("latest_version", Integer, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("template", Text, nullable=False),  # "" for a chat prompt
    Column("messages", Text),  # JSON list of a chat prompt's messages; NULL: a text prompt
    Column("config", Text),  # JSON object: the model config the version carries
    Column("variables", Text, nullable=False),  # JSON list, sorted
    Column("parent", Integer),
    Column("author", String(128), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("addressed_patterns", Text, nullable=False),  # JSON list
    Column("created_at", Float, nullable=False),
    Column("position", BigInteger, nullable=False),
)

labels = Table(
    "labels",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("label", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("previous", Integer),  # what the label pointed at before: rollback's default
    Column("moved_at", Float, nullable=False),
    Column("moved_by", String(128), nullable=False),
)

version_counts = Table(
    "version_counts",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("executions", BigInteger, nullable=False),
    Column("successes", BigInteger, nullable=False),
    Column("failures", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
    # Integer micro-units: integer sums are associative, so the fold gives the same bits
    # whatever the batch boundaries were (live group commits vs replay chunks).
    Column("latency_us_sum", BigInteger, nullable=False),
    Column("cost_nanousd_sum", BigInteger, nullable=False),
    Column("last_execution_at", Float),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(128), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("revoked_at", Float),
)

PROJECTION_TABLES: tuple[Table, ...] = (prompts, versions, labels, version_counts, tokens)

# Corrections and failed executions, as mining reads them (corrections carry their
# execution's input, joined by id when the correction was folded).
failure_records = Table(
    "failure_records",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("prompt", String(128), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("category", String(100)),
    Column("error_type", String(200)),
    Column("severity", Float, nullable=False),
    Column("input_text", Text),
    Column("output_text", Text),
    Column("corrected_output", Text),
    # The execution's scalar input variables, JSON [[name, value], ...] sorted: the
    # contextual strategy conditions guidance on the one that separates a pattern.
    Column("variables", Text),
)

# The latest mining snapshot per prompt (the full history is in the log).
pattern_snapshots = Table(
    "pattern_snapshots",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("mined_at", Float, nullable=False),
    Column("upto_position", BigInteger, nullable=False),
    Column("snapshot", Text, nullable=False),  # JSON: patterns, resolved, anomalies
)

# Executions, failures and corrections per prompt per minute: windows for share and anomalies.
activity = Table(
    "activity",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # unix seconds // 60
    Column("executions", BigInteger, nullable=False),
    Column("failures", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
)

# Deployments: the events of each (few per deployment) so the state is a pure re-fold with
# deploy.state.fold, and the stratum history so a late execution or correction finds the
# stratum (stretch of constant weights) it was assigned in.
deployments = Table(
    "deployments",
    metadata,
    Column("deployment_id", String(64), primary_key=True),
    Column("prompt", String(128), nullable=False, index=True),
    Column("phase", String(32), nullable=False),
    Column("events", Text, nullable=False),  # JSON [[type, payload, recorded_at], ...]
    Column("stratum_history", Text, nullable=False),  # JSON [[from_position, stratum], ...]
    Column("started_position", BigInteger, nullable=False),
    Column("updated_position", BigInteger, nullable=False),
)

# Sufficient statistics per deployment, stratum and arm (see deploy.stats.ArmStats): each
# metric as n, total and m2 (squared deviations from the mean, folded one value at a time
# in log order, so replay gives the same bits whatever the batch boundaries).
_MOMENTS = ("success", "score", "log_latency", "cost", "errors")
arm_stats = Table(
    "arm_stats",
    metadata,
    Column("deployment_id", String(64), primary_key=True),
    Column("stratum", Integer, primary_key=True),
    Column("arm", String(16), primary_key=True),
    Column("assignments", BigInteger, nullable=False),
    Column("executions", BigInteger, nullable=False),
    Column("subjects", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
    *[c for m in _MOMENTS for c in (
        Column(f"{m}_n", BigInteger, nullable=False),
        Column(f"{m}_total", Float, nullable=False),
        Column(f"{m}_m2", Float, nullable=False),
    )],
)
ARM_MOMENTS = _MOMENTS

# The subjects seen per deployment, stratum and arm: the sample-ratio check counts distinct
# subjects (a returning user is one unit of assignment, not many). Keys are hashes, never
# the subjects themselves.
arm_subjects = Table(
    "arm_subjects",
    metadata,
    Column("deployment_id", String(64), primary_key=True),
    Column("stratum", Integer, primary_key=True),
    Column("arm", String(16), primary_key=True),
    Column("subject_key", String(32), primary_key=True),
)

candidates = Table(
    "candidates",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("strategy", String(64), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("addressed_patterns", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("gate", Text),  # JSON: the offline gate's wins, losses, ties and p (None: no gate)
    Column("status", String(32), nullable=False),
    Column("deployment_id", String(64)),
    Column("proposed_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Everything but agent traffic, per prompt: what `promptd history` prints.
timeline = Table(
    "timeline",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("prompt", String(128), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("summary", Text, nullable=False),
)

prompt_policies = Table(
    "prompt_policies",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("overrides", Text, nullable=False),  # JSON partial CanaryPolicy
    Column("updated_at", Float, nullable=False),
)

# The newest variables agents rendered each prompt with (lint re-renders candidates with them).
recorded_variables = Table(
    "recorded_variables",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("prompt", String(128), nullable=False, index=True),
    Column("variables", Text, nullable=False),
)
RECORDED_VARIABLES_KEPT = 20

# Neither log nor read model: one row the writer rewrites while appends fail, to tell when the
# database takes writes again (readiness recovers without waiting for traffic).
writer_probe = Table(
    "writer_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("written_at", Float, nullable=False),
    Column("filler", LargeBinary, nullable=False),
)

# Per prompt version and hour: what `promptd report` sums over its window (integer micro-units,
# as in version_counts, so any batching adds up to the same bits).
version_hours = Table(
    "version_hours",
    metadata,
    Column("prompt", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # unix seconds // 3600
    Column("executions", BigInteger, nullable=False),
    Column("successes", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
    Column("latency_us_sum", BigInteger, nullable=False),
    Column("cost_nanousd_sum", BigInteger, nullable=False),
)
