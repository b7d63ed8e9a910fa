"""Spans in, execution and correction events out: the pure mapping behind ``POST /v1/traces``.

Every span of a request gets exactly one outcome: ``mapped`` (it became an execution),
``ignored`` (nothing for promptd: not a model call, no prompt identity, or already recorded by
the SDK) or ``rejected`` (it names a prompt or version promptd does not know, or cannot be an
execution). Rejected spans are what OTLP's ``partial_success`` reports; ignored ones are only
counted. The table of which attribute becomes which field is in ops/OTLP.md.

Identity is inherited: a model-call span with no prompt identity of its own takes the one of
its nearest ancestor in the same request that has one. That is how an agent resolving through
promptd's SDK (which stamps the identity and arm on the agent's current span) gets its
instrumented LLM calls, which are child spans, attributed without posting anything itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from service.contract.agent import CorrectionIn, ExecutionIn, span_execution_id

from . import keys as k
from .spans import AttrValue, Span

MAX_ANCESTRY = 256  # parent hops followed before a chain counts as a loop
FAILING_LABELS = frozenset({"fail", "failed", "failure", "false", "incorrect", "wrong", "bad",
                            "no", "rejected"})
PASSING_LABELS = frozenset({"pass", "passed", "true", "correct", "good", "yes", "accepted"})
FAILING_BELOW = 0.5  # an unlabelled score in [0, 1] under this fails
_MESSAGE_EXAMPLES = 5
_EXECUTIONS = TypeAdapter(list[ExecutionIn])


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the registry knows, for the mapping to check spans against."""

    prompts: Container[str]
    versions: Container[tuple[str, int]]
    templates: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # text -> version


@dataclass(slots=True)
class TraceMapping:
    """The events a request's spans became, and what happened to every span."""

    executions: list[ExecutionIn] = field(default_factory=list)
    corrections: list[CorrectionIn] = field(default_factory=list)
    spans: Counter[tuple[str, str]] = field(default_factory=Counter)  # (result, reason)
    evaluations: Counter[str] = field(default_factory=Counter)  # correction|score|unmatched
    problems: list[str] = field(default_factory=list)  # the first few rejections, for people

    @property
    def rejected(self) -> int:
        """Return how many spans were rejected."""
        return sum(n for (result, _), n in self.spans.items() if result == "rejected")

    @property
    def ignored(self) -> int:
        """Return how many spans were ignored."""
        return sum(n for (result, _), n in self.spans.items() if result == "ignored")

    def keep_within(self, oldest: float, newest: float) -> None:
        """Reject the executions that ran outside ``[oldest, newest]`` (unix seconds), and
        the corrections of them: the window ``POST /v1/events`` holds agents to."""
        dropped = set()
        kept = []
        for e in self.executions:
            at = e.occurred_at.timestamp() if e.occurred_at is not None else None
            if at is not None and not oldest <= at <= newest:
                dropped.add(e.event_id)
                self.spans["mapped", "execution"] -= 1
                _reject(self, "out_of_window", f"span {e.event_id} ran at "
                        f"{e.occurred_at.isoformat()}, outside the accepted window")
            else:
                kept.append(e)
        if dropped:
            self.executions = kept
            self.corrections = [c for c in self.corrections if c.execution_id not in dropped]
            self.spans += Counter()  # drop counts that reached zero

    def message(self) -> str:
        """Return partial_success's error_message: why spans were rejected or ignored."""
        parts: list[str] = []
        if self.rejected:
            parts.append(f"{self.rejected} spans rejected: " + "; ".join(self.problems))
        no_prompt = self.spans[("ignored", "no_prompt")]
        if no_prompt:
            parts.append(f"{no_prompt} model-call spans carried no prompt identity "
                         "(gen_ai.prompt.name and gen_ai.prompt.version) and were ignored")
        return ". ".join(parts)


class _Context(NamedTuple):
    """What a span knows through itself and its ancestors (a tuple: one per span, cheap)."""

    prompt: str | None = None
    version: Any = None  # as sent: int, str or None
    deployment: str | None = None
    arm: str | None = None
    step: Any = None
    sdk_execution: str | None = None
    subject: str | None = None
    subject_marked: bool = False  # the subject is promptd.subject (the SDK's)


_NO_CONTEXT = _Context()


@dataclass(slots=True)
class _Candidate:
    """A model-call span on its way to becoming an execution."""

    span: Span
    prompt: str
    version: int
    context: _Context
    scores: list[float] = field(default_factory=list)


def map_spans(spans: Sequence[Span], catalogue: Catalogue,
              prices: Mapping[str, Price] | None = None) -> TraceMapping:
    """Return the executions and corrections ``spans`` become, and each span's outcome."""
    out = TraceMapping()
    index = {(s.trace_id, s.span_id): s for s in spans if s.trace_id and s.span_id}
    contexts: dict[tuple[str, str], _Context] = {}
    candidates: dict[tuple[str, str], _Candidate] = {}
    prompts, versions = catalogue.prompts, catalogue.versions
    for s in spans:
        key = (s.trace_id, s.span_id)
        if not s.trace_id or not s.span_id or s.end_ns < s.start_ns:
            _reject(out, "invalid_span", f"span {s.name!r}: bad ids or ends before it starts")
            continue
        if not _is_model_call(s.attributes):
            out.spans["ignored", "not_model_call"] += 1
            continue
        if s.parent_span_id and (s.trace_id, s.parent_span_id) in index:
            ctx = _context_of(key, index, contexts, catalogue)
        else:  # a root of this request (the usual model-call span): nothing to inherit
            ctx = _own_context(s, _NO_CONTEXT, catalogue)
        if ctx.prompt is None:
            out.spans["ignored", "no_prompt"] += 1
        elif ctx.sdk_execution is not None:
            out.spans["ignored", "recorded_by_sdk"] += 1
        elif (version := _as_version(ctx.version)) is None:
            _reject(out, "missing_version", f"prompt {ctx.prompt!r} without an integer version")
        elif ctx.prompt not in prompts:
            _reject(out, "unknown_prompt", f"unknown prompt {ctx.prompt!r}")
        elif (ctx.prompt, version) not in versions:
            _reject(out, "unknown_version", f"prompt {ctx.prompt!r} has no version {version}")
        else:
            candidates[key] = _Candidate(s, ctx.prompt, version, ctx)
    corrections = _evaluate(spans, index, contexts, candidates, catalogue, out)
    fields = [_execution_fields(c, prices) for c in candidates.values()]
    try:  # one call for the whole batch; span by span only to find the invalid ones
        out.executions = _EXECUTIONS.validate_python(fields)
    except ValidationError:
        for c, item in zip(candidates.values(), fields, strict=True):
            try:
                out.executions.append(ExecutionIn.model_validate(item))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "span"
                _reject(out, "invalid_span", f"span {c.span.name!r}: {where}: {first.get('msg')}")
    mapped = {e.event_id for e in out.executions}
    out.spans["mapped", "execution"] += len(out.executions)
    if not out.executions:
        del out.spans["mapped", "execution"]
    for target, correction in corrections:
        if target is not None and target not in mapped:
            out.evaluations["unmatched"] += 1  # its execution was rejected after all
            continue
        out.corrections.append(correction)
        out.evaluations["correction"] += 1
    return out


def _reject(out: TraceMapping, reason: str, problem: str) -> None:
    out.spans["rejected", reason] += 1
    if len(out.problems) < _MESSAGE_EXAMPLES:
        out.problems.append(problem)


def _is_model_call(attributes: Mapping[str, AttrValue]) -> bool:
    operation = attributes.get(k.OPERATION)
    if operation is not None:
        return operation in k.MODEL_CALL_OPERATIONS
    return any(attributes.get(key) in values for key, values in k.VENDOR_MODEL_CALLS)


def _as_version(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


def _own_identity(attributes: Mapping[str, AttrValue],
                  catalogue: Catalogue) -> tuple[str, Any] | None:
    for name_key, version_key in k.PROMPT_KEYS:
        name = attributes.get(name_key)
        if isinstance(name, str) and name:
            return name, attributes.get(version_key)
    template = attributes.get(k.TEMPLATE_KEY)
    if isinstance(template, str):
        return catalogue.templates.get(template)
    return None


def _own_context(s: Span, parent: _Context, catalogue: Catalogue) -> _Context:
    a = s.attributes
    # The subject the SDK assigned the arm for wins over a conversation id on a span beneath
    # it: sample-ratio checks count the units assignment saw.
    marked = parent.subject if parent.subject_marked else None
    subject = parent.subject
    for key in k.SUBJECT_KEYS:
        value = a.get(key)
        if value is not None:
            subject = str(value)
            if key == k.MARKED_SUBJECT:
                marked = subject
            break
    if marked is not None:
        subject = marked
    identity = _own_identity(a, catalogue)
    if identity is None:
        if subject == parent.subject and (marked is not None) == parent.subject_marked:
            return parent
        return _replace_subject(parent, subject, marked is not None)
    prompt, version = identity
    deployment = a.get(k.DEPLOYMENT)
    if isinstance(deployment, str):
        marks: tuple[Any, ...] = (deployment, a.get(k.ARM), a.get(k.STEP))
    elif (prompt, str(version)) == (parent.prompt, str(parent.version)):
        # The same prompt as the span around it (e.g. an instrumentation that also names
        # it): the arm the SDK stamped on the outer span still holds.
        marks = (parent.deployment, parent.arm, parent.step)
    else:
        marks = (None, None, None)
    sdk_execution = a.get(k.SDK_EXECUTION)
    if not isinstance(sdk_execution, str):
        same = (prompt, str(version)) == (parent.prompt, str(parent.version))
        sdk_execution = parent.sdk_execution if same else None
    arm = marks[1] if isinstance(marks[1], str) else None
    return _Context(prompt, version, marks[0], arm, marks[2], sdk_execution, subject,
                    marked is not None)


def _replace_subject(ctx: _Context, subject: str | None, marked: bool) -> _Context:
    return _Context(ctx.prompt, ctx.version, ctx.deployment, ctx.arm, ctx.step,
                    ctx.sdk_execution, subject, marked)


def _context_of(key: tuple[str, str], index: Mapping[tuple[str, str], Span],
                contexts: dict[tuple[str, str], _Context], catalogue: Catalogue) -> _Context:
    """Return a span's context, folding its ancestors' first (memoised per request)."""
    chain: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    cursor: tuple[str, str] | None = key
    while cursor is not None and cursor not in contexts and cursor in index:
        if cursor in seen or len(chain) >= MAX_ANCESTRY:
            break  # a loop of parent ids: the chain ends here
        seen.add(cursor)
        chain.append(cursor)
        parent_id = index[cursor].parent_span_id
        cursor = (cursor[0], parent_id) if parent_id else None
    ctx = contexts.get(cursor, _NO_CONTEXT) if cursor is not None else _NO_CONTEXT
    for link in reversed(chain):
        ctx = _own_context(index[link], ctx, catalogue)
        contexts[link] = ctx
    return contexts.get(key, _NO_CONTEXT)


# -- evaluations --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Evaluation:
    name: str
    score: float | None
    label: str | None
    explanation: str | None

    @property
    def failing(self) -> bool:
        label = (self.label or "").strip().lower()
        if label in FAILING_LABELS:
            return True
        if label in PASSING_LABELS:
            return False
        return self.score is not None and 0.0 <= self.score < FAILING_BELOW


def _evaluation(attributes: Mapping[str, AttrValue]) -> _Evaluation | None:
    if k.EVALUATION_KEYS.isdisjoint(attributes):
        return None
    score = attributes.get(k.EVALUATION_SCORE)
    label = attributes.get(k.EVALUATION_LABEL)
    explanation = attributes.get(k.EVALUATION_EXPLANATION)
    return _Evaluation(
        str(attributes.get(k.EVALUATION_NAME) or "evaluation"),
        float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
        str(label) if label is not None else None,
        str(explanation) if explanation is not None else None)


def _evaluations_of(s: Span) -> list[_Evaluation]:
    found = [_evaluation(e.attributes) for e in s.events]
    own = _evaluation(s.attributes)
    return [e for e in (own, *found) if e is not None]


def _evaluate(spans: Sequence[Span], index: Mapping[tuple[str, str], Span],
              contexts: dict[tuple[str, str], _Context],
              candidates: dict[tuple[str, str], _Candidate], catalogue: Catalogue,
              out: TraceMapping) -> list[tuple[str | None, CorrectionIn]]:
    """Attach evaluation scores to candidates; return the corrections failing ones become.

    Each correction comes with the execution id it needs mapped in this request (None when
    it corrects an execution the SDK recorded).
    """
    corrections: list[tuple[str | None, CorrectionIn]] = []
    below: dict[tuple[str, str], list[_Candidate]] | None = None
    for s in spans:
        if not s.evaluated:
            continue
        evaluations = _evaluations_of(s)
        if not evaluations or not s.trace_id or not s.span_id:
            continue
        target = _evaluated(s, index, contexts, candidates, catalogue)
        if target is None:
            if below is None:
                below = _model_calls_below(candidates, index)
            under = below.get((s.trace_id, s.span_id))
            target = max(under, key=lambda c: c.span.end_ns) if under else None
        if target is None:
            out.evaluations["unmatched"] += len(evaluations)
            continue
        for i, evaluation in enumerate(evaluations):
            if isinstance(target, _Candidate) and evaluation.score is not None \
                    and 0.0 <= evaluation.score <= 1.0:
                target.scores.append(evaluation.score)
                out.evaluations["score"] += 1
            if not (evaluation.failing and evaluation.explanation):
                continue
            if isinstance(target, _Candidate):
                needed: str | None = span_execution_id(target.span.trace_id, target.span.span_id)
                execution_id, prompt, version = needed, target.prompt, target.version
            else:
                needed = None
                execution_id, prompt, version = target
            try:
                corrections.append((needed, CorrectionIn(
                    event_id=f"{span_execution_id(s.trace_id, s.span_id)}:eval{i}",
                    execution_id=execution_id, prompt=prompt, version=version,
                    category=evaluation.name[:100], reason=evaluation.explanation[:100_000],
                    author="otlp:evaluation",
                    occurred_at=datetime.fromtimestamp(s.end_ns / 1e9, UTC))))
            except ValidationError:
                out.evaluations["unmatched"] += 1
    return corrections


def _evaluated(s: Span, index: Mapping[tuple[str, str], Span],
               contexts: dict[tuple[str, str], _Context],
               candidates: dict[tuple[str, str], _Candidate],
               catalogue: Catalogue) -> _Candidate | tuple[str, str, int] | None:
    """Return the execution an evaluation on ``s`` judges: ``s`` or its nearest ancestor."""
    key: tuple[str, str] | None = (s.trace_id, s.span_id)
    for _ in range(MAX_ANCESTRY):
        if key is None or key not in index:
            return None
        if key in candidates:
            return candidates[key]
        ctx = _context_of(key, index, contexts, catalogue)
        version = _as_version(ctx.version)
        own = index[key].attributes.get(k.SDK_EXECUTION)
        if isinstance(own, str) and ctx.prompt is not None and version is not None:
            return own, ctx.prompt, version  # the execution promptd's SDK recorded itself
        parent = index[key].parent_span_id
        key = (key[0], parent) if parent else None
    return None


def _model_calls_below(candidates: dict[tuple[str, str], _Candidate],
                       index: Mapping[tuple[str, str], Span]
                       ) -> dict[tuple[str, str], list[_Candidate]]:
    """Return, per span, the candidate model calls beneath it in this request."""
    below: dict[tuple[str, str], list[_Candidate]] = {}
    for c in candidates.values():
        key: tuple[str, str] | None = (c.span.trace_id, c.span.parent_span_id)
        for _ in range(MAX_ANCESTRY):
            if key is None or not key[1]:
                break
            below.setdefault(key, []).append(c)
            parent = index.get(key)
            key = (key[0], parent.parent_span_id) if parent is not None else None
    return below


# -- executions ---------------------------------------------------------------------------------

def _first(attributes: Mapping[str, AttrValue], names: Sequence[str]) -> AttrValue | None:
    for name in names:
        if name in attributes:
            return attributes[name]
    return None


def _tokens(attributes: Mapping[str, AttrValue]) -> tuple[Any, Any]:
    tokens_in = _first(attributes, k.INPUT_TOKEN_KEYS)
    tokens_out = _first(attributes, k.OUTPUT_TOKEN_KEYS)
    usage = attributes.get(k.LANGFUSE_USAGE)
    if (tokens_in is None or tokens_out is None) and isinstance(usage, str):
        try:
            details = json.loads(usage)
        except ValueError:
            details = None
        if isinstance(details, dict):
            tokens_in = details.get("input") if tokens_in is None else tokens_in
            tokens_out = details.get("output") if tokens_out is None else tokens_out
    return tokens_in, tokens_out


def price_of(model: str | None, prices: Mapping[str, Price]) -> Price | None:
    """Return a model's price: its own entry, else the longest entry it starts with.

    Providers answer with dated names (``gpt-4o-mini-2024-07-18``) for the model asked for.
    """
    if model is None or not prices:
        return None
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if model.startswith(name)]
    return prices[max(prefixes, key=len)] if prefixes else None


def _execution_fields(c: _Candidate, prices: Mapping[str, Price] | None) -> dict[str, Any]:
    s, a, ctx = c.span, c.span.attributes, c.context
    fields: dict[str, Any] = {
        "event_id": span_execution_id(s.trace_id, s.span_id), "prompt": c.prompt,
        "version": c.version, "latency_ms": (s.end_ns - s.start_ns) / 1e6,
        # Unix seconds: the contract reads a number as a UTC time.
        "occurred_at": s.end_ns / 1e9,
    }
    if ctx.deployment is not None:
        fields["deployment"], fields["arm"], fields["step"] = ctx.deployment, ctx.arm, ctx.step
    if ctx.subject:
        fields["subject"] = ctx.subject[:200]
    error_type = a.get(k.ERROR_TYPE)
    failed = s.error or error_type is not None or a.get(k.LANGFUSE_LEVEL) == "ERROR"
    fields["success"] = not failed
    if failed:
        fields["error_type"] = str(error_type)[:200] if error_type is not None \
            else "span_status_error"
    if c.scores:
        fields["score"] = sum(c.scores) / len(c.scores)
    model = _first(a, k.MODEL_KEYS)
    if model is not None:
        model = fields["model"] = str(model)[:200]
    tokens_in, tokens_out = _tokens(a)
    if tokens_in is not None:
        fields["input_tokens"] = tokens_in
    if tokens_out is not None:
        fields["output_tokens"] = tokens_out
    price = price_of(model, prices) if prices else None
    if price is not None and isinstance(tokens_in, int) and isinstance(tokens_out, int):
        fields["cost_usd"] = (tokens_in * price.input + tokens_out * price.output) / 1_000_000
    metadata: dict[str, Any] = {"source": "otlp", "span_name": s.name[:200]}
    service = s.resource.get(k.SERVICE_NAME)
    if service is not None:
        metadata["service"] = str(service)[:200]
    fields["metadata"] = metadata
    return {name: value for name, value in fields.items() if value is not None}
