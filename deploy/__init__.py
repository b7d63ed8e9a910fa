"""Pure rollout logic: sticky assignment, canary policy, the deployment state machine, decisions.

The service folds deployment events with ``evolve``, runs ``decide_many`` at every analysis
tick and ``command`` for admins, and appends whatever ``Decision`` comes back; the SDK runs
``assign`` locally from a deployment's ``weights()``.
"""

from __future__ import annotations

from deploy.assignment import BUCKETS, assign, bucket, bucket_ranges
from deploy.canary import COMMANDS, CommandName, decide, decide_many
from deploy.commands import command
from deploy.decision import AUTOMATIC_ACTOR, Decision, TransitionError
from deploy.policy import CanaryPolicy, Guardrail, PolicyBook, merge_policy
from deploy.state import EVENT_TYPES, Arm, DeploymentState, Phase, evolve, fold, start
from deploy.stats import METRICS, ArmStats, StepStats

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
