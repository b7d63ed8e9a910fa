"""Sticky, stateless assignment of a subject to an arm of a deployment.

A subject hashes to one of 10,000 buckets, salted with the deployment id so different
deployments split traffic independently. Each candidate arm owns a bucket range anchored at
a fixed point and growing in one direction only, so a subject in a candidate at 5% is still
in it at 25%, whatever the other candidates do:

    c1  grows up   from bucket 0
    c3  grows up   from bucket 5,000
    c2  grows down from bucket 10,000
    control takes every bucket no candidate owns

With up to three candidates at an equal split (2,500 each) the ranges never meet. The SDK
runs exactly this code from the deployment's weights, so resolve needs no round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import blake2b
from itertools import pairwise

BUCKETS = 10_000
CONTROL = "control"
CANDIDATE_ARMS = ("c1", "c2", "c3")

# (anchor, direction) per candidate: direction +1 grows upward from the anchor, -1 downward.
_ANCHORS: dict[str, tuple[int, int]] = {"c1": (0, 1), "c3": (5_000, 1), "c2": (BUCKETS, -1)}


def bucket(deployment_id: str, subject: str) -> int:
    """Return the subject's bucket in [0, 10_000) for this deployment."""
    # blake2b, not hash(): Python's string hash is salted per process, and the SDK in
    # another process (or language) must land every subject in the same bucket.
    digest = blake2b(f"{deployment_id}:{subject}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def bucket_ranges(weights: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Return each candidate's half-open bucket range [start, stop) for these weights.

    Raises ``ValueError`` if an arm is unknown, a weight is out of range, the weights do not
    sum to 10,000, or two candidate ranges would overlap.
    """
    unknown = set(weights) - {CONTROL, *CANDIDATE_ARMS}
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; arms are control, c1, c2, c3")
    for arm, weight in weights.items():
        if not 0 <= weight <= BUCKETS:
            raise ValueError(f"weight of {arm} must be in [0, {BUCKETS}], got {weight}")
    if sum(weights.values()) != BUCKETS:
        raise ValueError(f"weights must sum to {BUCKETS} basis points, got {sum(weights.values())}")
    if len([w for w in weights.values() if w > 0]) == 1:
        # One arm takes all traffic (before the first step, after promotion or rollback).
        return {arm: (0, BUCKETS) for arm, w in weights.items() if w > 0 and arm != CONTROL}
    ranges: dict[str, tuple[int, int]] = {}
    for arm in CANDIDATE_ARMS:
        width = weights.get(arm, 0)
        if width == 0:
            continue
        anchor, direction = _ANCHORS[arm]
        ranges[arm] = (anchor, anchor + width) if direction > 0 else (anchor - width, anchor)
    spans = sorted(ranges.items(), key=lambda item: item[1])
    for (left, (_, left_stop)), (right, (right_start, _)) in pairwise(spans):
        if left_stop > right_start:
            raise ValueError(f"bucket ranges of {left} and {right} overlap for weights {weights}")
    return ranges


def arm_for_bucket(bucket_index: int, weights: Mapping[str, int]) -> str:
    """Return the arm that owns ``bucket_index`` under ``weights`` (validated)."""
    for arm, (start, stop) in bucket_ranges(weights).items():
        if start <= bucket_index < stop:
            return arm
    return CONTROL


def assign(deployment_id: str, subject: str, weights: Mapping[str, int]) -> str:
    """Return the arm ("control", "c1", "c2" or "c3") this subject is served.

    ``weights`` are basis points per arm as ``DeploymentState.weights()`` gives them; a
    request without a subject passes its event id, so it is assigned per request.
    """
    b = bucket(deployment_id, subject)
    # The hot path: no validation here (the weights come from the deployment, which
    # ``bucket_ranges`` already accepted); a handful of integer comparisons.
    for arm, width in weights.items():
        if width <= 0 or arm == CONTROL:
            continue
        if width >= BUCKETS:
            return arm
        anchor, direction = _ANCHORS[arm]
        if (anchor <= b < anchor + width) if direction > 0 else (anchor - width <= b < anchor):
            return arm
    return CONTROL
