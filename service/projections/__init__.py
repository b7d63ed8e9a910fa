"""Read models folded from the log, and the queries that read them.

Each projection is a plain object (``name``, the event ``types`` it folds, its ``tables``,
``apply(conn, events)``); the ``Projector`` folds every one exactly once in position order,
storing each projection's position in the same transaction as its writes.
"""

from __future__ import annotations

from service.projections.counts import (
    VersionCountsProjection,
    VersionHoursProjection,
    execution_succeeded,
)
from service.projections.failures import (
    ActivityProjection,
    FailureProjection,
    PatternProjection,
    RecordedVariablesProjection,
)
from service.projections.projector import Projection, Projector
from service.projections.registry import RegistryProjection
from service.projections.rollout import (
    ArmStatsProjection,
    CandidateProjection,
    DeploymentProjection,
    PolicyProjection,
    TimelineProjection,
)
from service.projections.tokens import TokenProjection

__all__ = ["Projection", "Projector", "default_projections", "execution_succeeded"]


def default_projections() -> list[Projection]:
    """Return a fresh instance of every projection the daemon keeps."""
    # Order matters within a batch: deployments before the projections that read them.
    return [RegistryProjection(), VersionCountsProjection(), TokenProjection(),
            FailureProjection(), ActivityProjection(), PatternProjection(),
            RecordedVariablesProjection(), VersionHoursProjection(),
            DeploymentProjection(), ArmStatsProjection(), CandidateProjection(),
            TimelineProjection(), PolicyProjection()]
