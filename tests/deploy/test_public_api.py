"""The package's public surface is explicit and importable."""

from __future__ import annotations

import deploy


def test_public_api_is_exactly_the_documented_names() -> None:
    assert sorted(deploy.__all__) == sorted(
        [
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
    )
    assert len(set(deploy.__all__)) == len(deploy.__all__)


def test_every_exported_name_resolves() -> None:
    for name in deploy.__all__:
        assert getattr(deploy, name) is not None, name
