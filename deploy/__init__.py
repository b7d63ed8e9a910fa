"""Pure rollout logic: sticky assignment, canary policy, the deployment state machine, decisions.

The service folds deployment events with ``evolve``, runs ``decide_many`` at every analysis
tick and ``command`` for admins, and appends whatever ``Decision`` comes back; the SDK runs
``assign`` locally from a deployment's ``weights()``. Names load on first use (PEP 562), so
the SDK's ``deploy.assignment`` does not load numpy and scipy with the decision rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.lazy import lazy_exports

_WHERE = {
    "BUCKETS": "assignment", "assign": "assignment", "bucket": "assignment",
    "bucket_ranges": "assignment",
    "COMMANDS": "canary", "CommandName": "canary", "decide": "canary",
    "decide_many": "canary",
    "command": "commands",
    "AUTOMATIC_ACTOR": "decision", "Decision": "decision", "TransitionError": "decision",
    "CanaryPolicy": "policy", "Guardrail": "policy", "PolicyBook": "policy",
    "merge_policy": "policy",
    "EVENT_TYPES": "state", "Arm": "state", "DeploymentState": "state", "Phase": "state",
    "evolve": "state", "fold": "state", "start": "state",
    "METRICS": "stats", "ArmStats": "stats", "StepStats": "stats",
}

__all__ = [
    "AUTOMATIC_ACTOR",
    "BUCKETS",
    "COMMANDS",
    "EVENT_TYPES",
    "METRICS",
    "Arm",
    "ArmStats",
    "CanaryPolicy",
    "CommandName",
    "Decision",
    "DeploymentState",
    "Guardrail",
    "Phase",
    "PolicyBook",
    "StepStats",
    "TransitionError",
    "assign",
    "bucket",
    "bucket_ranges",
    "command",
    "decide",
    "decide_many",
    "evolve",
    "fold",
    "merge_policy",
    "start",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)


if TYPE_CHECKING:
    from deploy.assignment import BUCKETS, assign, bucket, bucket_ranges
    from deploy.canary import COMMANDS, CommandName, decide, decide_many
    from deploy.commands import command
    from deploy.decision import AUTOMATIC_ACTOR, Decision, TransitionError
    from deploy.policy import CanaryPolicy, Guardrail, PolicyBook, merge_policy
    from deploy.state import EVENT_TYPES, Arm, DeploymentState, Phase, evolve, fold, start
    from deploy.stats import METRICS, ArmStats, StepStats
