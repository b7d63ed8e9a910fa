"""Read models of rollouts: deployments, per-arm statistics, candidates, timeline, policies.

Each fold decides by *position*, never by batch: an execution belongs to the stratum (a
stretch of constant weights: a step, or the rest of a step after an elimination) that was
current at its position (``stratum_history``), and a correction to its execution's stratum
and arm. That keeps the fold identical live (group commits) and in a replay (large chunks).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from hashlib import blake2b
from typing import Any

from sqlalchemy import Connection, select

from analytics.moments import Moments
from deploy.state import EVENT_TYPES, TERMINAL, DeploymentState, fold
from deploy.stats import ArmStats, StepStats
from service.contract import system
from service.projections.armfold import ArmFold
from service.projections.counts import execution_succeeded
from service.projections.projector import insert_many, upsert
from service.store import eventlog
from service.store.eventlog import StoredEvent
from service.store.schema import (
    ARM_MOMENTS,
    arm_stats,
    arm_subjects,
    candidates,
    deployments,
    prompt_policies,
    timeline,
)

DEPLOYMENT_TYPES = frozenset(EVENT_TYPES)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class DeploymentRow:
    """A deployments row, decoded."""

    def __init__(self, row: Any) -> None:
        self.deployment_id: str = row.deployment_id
        self.prompt: str = row.prompt
        self.events: list[list[Any]] = json.loads(row.events)
        self.stratum_history: list[list[int]] = json.loads(row.stratum_history)
        self.started_position: int = row.started_position
        self.updated_position: int = row.updated_position
        self._state: DeploymentState | None = None
        self._folded = -1

    def state(self) -> DeploymentState:
        """Return the deployment's state, folded from its events (memoised per length)."""
        if self._state is None or self._folded != len(self.events):
            state = fold([(t, p, at) for t, p, at in self.events])
            assert state is not None  # every row starts with deployment.started
            self._state, self._folded = state, len(self.events)
        return self._state

    def stratum_at(self, position: int) -> int:
        """Return the stratum the deployment was in when ``position`` was appended."""
        starts = [p for p, _ in self.stratum_history]
        i = bisect_left(starts, position) - 1
        return self.stratum_history[max(i, 0)][1]

    def ended_before(self, position: int) -> bool:
        """Return whether the deployment had ended before ``position``."""
        return self.state().phase in TERMINAL and self.updated_position < position


def load_row(conn: Connection, deployment_id: str) -> DeploymentRow | None:
    """Return a deployment's row, or None."""
    row = conn.execute(select(deployments)
                       .where(deployments.c.deployment_id == deployment_id)).first()
    return DeploymentRow(row) if row is not None else None


class DeploymentProjection:
    """Every deployment's events, phase and step history."""

    name = "deployments"
    types = DEPLOYMENT_TYPES
    tables = (deployments,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            entry = [e.type, p, e.recorded_at]
            if e.type == "deployment.started":
                if load_row(conn, p["deployment_id"]) is not None:
                    continue
                state = fold([tuple(entry)])  # type: ignore[list-item]
                assert state is not None
                conn.execute(deployments.insert().values(
                    deployment_id=p["deployment_id"], prompt=p["prompt"],
                    phase=state.phase.value, events=_json([entry]),
                    stratum_history=_json([[e.position, state.stratum]]),
                    started_position=e.position,
                    updated_position=e.position))
                continue
            row = load_row(conn, str(p.get("deployment_id", "")))
            if row is None:
                continue
            before = row.state()
            row.events.append(entry)
            after = row.state()
            if after == before:
                continue  # an event the phase no longer allows: ignored, as the fold does
            if after.stratum != before.stratum:
                row.stratum_history.append([e.position, after.stratum])
            conn.execute(deployments.update()
                         .where(deployments.c.deployment_id == row.deployment_id)
                         .values(phase=after.phase.value, events=_json(row.events),
                                 stratum_history=_json(row.stratum_history),
                                 updated_position=e.position))


def _stats_from_row(row: Any) -> ArmStats:
    moments = {m: Moments(getattr(row, f"{m}_n"), getattr(row, f"{m}_total"),
                          getattr(row, f"{m}_m2")) for m in ARM_MOMENTS}
    return ArmStats(assignments=row.assignments, executions=row.executions,
                    subjects=row.subjects, corrections=row.corrections, **moments)


def _stats_values(s: ArmStats) -> dict[str, Any]:
    values: dict[str, Any] = {"assignments": s.assignments, "executions": s.executions,
                              "subjects": s.subjects, "corrections": s.corrections}
    for m in ARM_MOMENTS:
        mom: Moments = getattr(s, m)
        values.update({f"{m}_n": mom.n, f"{m}_total": mom.total, f"{m}_m2": mom.m2})
    return values


class ArmStatsProjection:
    """Per deployment, stratum and arm: exposures, distinct subjects, every metric's moments."""

    name = "arm_stats"
    types = frozenset({"execution", "correction"})
    tables = (arm_stats, arm_subjects)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        rows: dict[str, DeploymentRow | None] = {}
        touched: dict[Key, ArmFold] = {}
        existing: set[Key] = set()
        subjects: dict[Key, set[str]] = {}

        def deployment(dep_id: str) -> DeploymentRow | None:
            if dep_id not in rows:
                rows[dep_id] = load_row(conn, dep_id)
            return rows[dep_id]

        def stats(key: Key) -> ArmFold:
            if key not in touched:
                row = conn.execute(select(arm_stats).where(
                    arm_stats.c.deployment_id == key[0], arm_stats.c.stratum == key[1],
                    arm_stats.c.arm == key[2])).first()
                if row is not None:
                    existing.add(key)
                touched[key] = ArmFold(_stats_from_row(row) if row is not None else ArmStats())
            return touched[key]

        executions = eventlog.find_many_before(conn, [
            (e.payload["execution_id"], e.position) for e in batch if e.type == "correction"])
        for e in batch:
            if e.type == "execution":
                key = self._target(deployment, e.payload, e.position)
                if key is None:
                    continue
                p = e.payload
                # One value at a time, in log order: the moments' bits then do not depend
                # on where batches begin and end.
                folded = stats(key)
                folded.execution(
                    success=execution_succeeded(p) if (p.get("success") is not None
                                                       or p.get("score") is not None) else None,
                    score=p.get("score"), latency_ms=p.get("latency_ms"),
                    cost_usd=p.get("cost_usd"), error=bool(p.get("error_type")))
                subject = p.get("subject")
                if subject:
                    subjects.setdefault(key, set()).add(subject_key(str(subject)))
                else:  # no subject: the SDK hashed the request itself, one unit each
                    folded.subjects += 1
            else:
                execution = executions.get((e.payload["execution_id"], e.position))
                if execution is None or execution.type != "execution":
                    continue
                key = self._target(deployment, execution.payload, execution.position)
                if key is not None:
                    stats(key).corrections += 1
        for key, keys in sorted(subjects.items()):
            touched[key].subjects += len(_new_subjects(conn, key, keys))
        for key, acc in sorted(touched.items()):
            values = _stats_values(acc.result())
            if key in existing:
                conn.execute(arm_stats.update().where(
                    arm_stats.c.deployment_id == key[0], arm_stats.c.stratum == key[1],
                    arm_stats.c.arm == key[2]).values(**values))
            else:
                conn.execute(arm_stats.insert().values(
                    deployment_id=key[0], stratum=key[1], arm=key[2], **values))

    @staticmethod
    def _target(deployment: Any, payload: dict[str, Any], position: int) -> Key | None:
        dep_id, arm = payload.get("deployment"), payload.get("arm")
        if not dep_id or not arm:
            return None
        row = deployment(dep_id)
        if row is None or row.started_position >= position or row.ended_before(position):
            return None
        state = row.state()
        try:
            if state.version_of(arm) != payload.get("version"):
                return None  # an agent reporting an arm with another version: not evidence
        except KeyError:
            return None
        return (dep_id, _stratum(state, row.stratum_at(position), payload), arm)


Key = tuple[str, int, str]


def _stratum(state: DeploymentState, current: int, payload: dict[str, Any]) -> int:
    """Return the stratum whose weights assigned an execution's arm.

    An SDK may serve a cached config for a moment after the weights changed: it reports the
    stratum (or, before strata, the step) it was assigned under; otherwise the stratum
    current when the execution was appended.
    """
    reported = payload.get("stratum")
    if isinstance(reported, int) and 0 <= reported <= current:
        return reported
    step = payload.get("step")
    if isinstance(step, int) and not isinstance(reported, int):
        of_step = [i for i in state.strata_of_step(step) if i <= current]
        if of_step:
            return of_step[-1]
    return current


def subject_key(subject: str) -> str:
    """Return the key a subject is counted under (a hash: subjects are not stored)."""
    return blake2b(subject.encode(), digest_size=16).hexdigest()


def _new_subjects(conn: Connection, key: Key, keys: set[str]) -> list[str]:
    """Record the subjects of one (deployment, stratum, arm) not seen before; return them."""
    wanted = sorted(keys)
    seen: set[str] = set()
    driver = eventlog.sqlite_driver(conn)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        if driver is not None:  # a replay chunk asks this for thousands of subjects
            seen.update(r[0] for r in driver.execute(
                "SELECT subject_key FROM arm_subjects WHERE deployment_id = ? AND stratum = ? "
                "AND arm = ? AND subject_key IN (" + ", ".join("?" * len(chunk)) + ")",
                (*key, *chunk)))
            continue
        seen.update(r[0] for r in conn.execute(select(arm_subjects.c.subject_key).where(
            arm_subjects.c.deployment_id == key[0], arm_subjects.c.stratum == key[1],
            arm_subjects.c.arm == key[2], arm_subjects.c.subject_key.in_(chunk))))
    new = [k for k in wanted if k not in seen]
    insert_many(conn, arm_subjects, [
        {"deployment_id": key[0], "stratum": key[1], "arm": key[2], "subject_key": k}
        for k in new])
    return new


def load_step_stats(conn: Connection, deployment_id: str) -> StepStats:
    """Return a deployment's statistics: stratum -> arm -> ArmStats."""
    out: dict[int, dict[str, ArmStats]] = {}
    for row in conn.execute(select(arm_stats).where(arm_stats.c.deployment_id == deployment_id)):
        out.setdefault(row.stratum, {})[row.arm] = _stats_from_row(row)
    return out


def load_deployments(conn: Connection, *, prompt: str | None = None,
                     active_only: bool = False, id_prefix: str | None = None,
                     limit: int | None = None) -> list[DeploymentState]:
    """Return deployments (oldest first), optionally of one prompt, only the live ones, or
    those whose id starts with ``id_prefix``; at most ``limit``."""
    query = select(deployments).order_by(deployments.c.started_position)
    if prompt is not None:
        query = query.where(deployments.c.prompt == prompt)
    if active_only:
        query = query.where(deployments.c.phase.not_in([p.value for p in TERMINAL]))
    if id_prefix:
        query = query.where(deployments.c.deployment_id.startswith(id_prefix, autoescape=True))
    if limit is not None:
        query = query.limit(limit)
    return [DeploymentRow(r).state() for r in conn.execute(query)]


class CandidateProjection:
    """Machine-written candidates and what became of them."""

    name = "candidates"
    types = frozenset({"candidate.proposed", "candidate.rejected", *DEPLOYMENT_TYPES})
    tables = (candidates,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            if e.type == system.CandidateProposed.TYPE:
                c = system.CandidateProposed.from_log(p)
                assert isinstance(c, system.CandidateProposed)
                conn.execute(candidates.insert().values(
                    prompt=c.prompt, version=c.version, strategy=c.strategy,
                    rationale=c.rationale, addressed_patterns=_json(c.addressed_patterns),
                    text_hash=c.text_hash, gate=_json(c.gate) if c.gate else None,
                    status="proposed", deployment_id=None,
                    proposed_at=e.recorded_at, updated_at=e.recorded_at))
            elif e.type == system.CandidateRejected.TYPE:
                self._set(conn, p["prompt"], p["version"], "rejected", None, e.recorded_at)
            else:
                row = load_row(conn, str(p.get("deployment_id", "")))
                if row is None:
                    continue
                state = row.state()
                for arm in state.candidates:
                    self._set(conn, state.prompt, arm.version, _status(state, arm.name),
                              state.deployment_id, e.recorded_at)

    @staticmethod
    def _set(conn: Connection, prompt: str, version: int, status: str, deployment_id: str | None,
             at: float) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if deployment_id is not None:
            values["deployment_id"] = deployment_id
        conn.execute(candidates.update().where(candidates.c.prompt == prompt,
                                               candidates.c.version == version).values(**values))


def _status(state: DeploymentState, arm: str) -> str:
    if arm in state.eliminated:
        return "eliminated"
    if state.phase.value == "promoted":
        return "promoted" if arm == state.winner else "lost"
    if state.phase.value in ("rolled_back", "superseded"):
        return state.phase.value
    return "in_canary"


REJECTED_STATUSES = ("rejected", "rolled_back", "eliminated", "lost")


def load_candidates(conn: Connection, prompt: str | None = None) -> list[dict[str, Any]]:
    """Return candidates, newest first."""
    query = select(candidates).order_by(candidates.c.proposed_at.desc(),
                                        candidates.c.version.desc())
    if prompt is not None:
        query = query.where(candidates.c.prompt == prompt)
    return [{"prompt": r.prompt, "version": r.version, "strategy": r.strategy,
             "rationale": r.rationale, "addressed_patterns": json.loads(r.addressed_patterns),
             "gate": json.loads(r.gate) if r.gate else None,
             "status": r.status, "deployment_id": r.deployment_id, "proposed_at": r.proposed_at,
             "updated_at": r.updated_at} for r in conn.execute(query)]


def rejected_hashes(conn: Connection, prompt: str) -> set[str]:
    """Return the normalised-text hashes of this prompt's candidates that did not ship."""
    rows = conn.execute(select(candidates.c.text_hash).where(
        candidates.c.prompt == prompt, candidates.c.status.in_(REJECTED_STATUSES)))
    return {r.text_hash for r in rows}


_SUMMARY_KEYS = ("version", "label", "previous", "kind", "protected", "strategy", "author",
                 "reason", "rationale",
                 "deployment_id", "step_index", "winner", "arm", "trigger", "overrides",
                 "arms", "records", "full", "requires_approval")


class TimelineProjection:
    """Every non-traffic event of a prompt, summarised: versions, labels, decisions, actors."""

    name = "timeline"
    types = frozenset({"prompt.created", "version.created", "label.moved", "label.protected",
                       "patterns.mined",
                       "candidate.proposed", "candidate.rejected", "policy.set",
                       *DEPLOYMENT_TYPES})
    tables = (timeline,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            prompt = p.get("prompt")
            if prompt is None and "deployment_id" in p:
                row = load_row(conn, p["deployment_id"])
                prompt = row.prompt if row is not None else None
            if prompt is None:
                continue
            summary = {k: p[k] for k in _SUMMARY_KEYS if k in p}
            for k in ("reason", "rationale"):
                if isinstance(summary.get(k), str):
                    summary[k] = summary[k][:300]
            if e.type == "patterns.mined":
                summary["patterns"] = len(p.get("patterns", []))
                summary["top"] = [x["label"] for x in p.get("patterns", [])[:3]]
            conn.execute(timeline.insert().values(
                position=e.position, prompt=prompt, type=e.type,
                actor=system.actor_of(e.type, p), recorded_at=e.recorded_at,
                summary=_json(summary)))


def load_timeline(conn: Connection, prompt: str, limit: int = 500) -> list[dict[str, Any]]:
    """Return a prompt's timeline, oldest first (the newest ``limit`` entries)."""
    rows = list(conn.execute(select(timeline).where(timeline.c.prompt == prompt)
                             .order_by(timeline.c.position.desc()).limit(limit)))
    return [{"position": r.position, "type": r.type, "actor": r.actor,
             "recorded_at": r.recorded_at, **json.loads(r.summary)} for r in reversed(rows)]


class PolicyProjection:
    """Per-prompt canary policy overrides (``policy.set``)."""

    name = "policies"
    types = frozenset({"policy.set"})
    tables = (prompt_policies,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            event = system.PolicySet.from_log(e.payload)
            assert isinstance(event, system.PolicySet)
            upsert(conn, prompt_policies, {"prompt": event.prompt},
                   {"overrides": _json(event.overrides), "updated_at": e.recorded_at})


def load_policy_overrides(conn: Connection, prompt: str) -> dict[str, Any]:
    """Return a prompt's stored policy overrides ({} when none)."""
    row = conn.execute(select(prompt_policies).where(prompt_policies.c.prompt == prompt)).first()
    return json.loads(row.overrides) if row is not None else {}
