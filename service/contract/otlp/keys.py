"""The span attributes promptd reads, by what they tell it, in the order it looks for them.

Everything else on a span is skipped while decoding: a batch of 512 spans carries thousands
of attributes, and only these few become part of an execution.
"""

from __future__ import annotations

# Prompt identity: (name key, version key), first pair present wins.
PROMPT_KEYS: tuple[tuple[str, str], ...] = (
    ("gen_ai.prompt.name", "gen_ai.prompt.version"),  # OpenTelemetry GenAI, the SDK's marks
    ("langfuse.observation.prompt.name", "langfuse.observation.prompt.version"),  # Langfuse v3
    ("traceloop.prompt.key", "traceloop.prompt.version"),  # OpenLLMetry (Traceloop)
)
# OpenInference names no prompt: its template text identifies a registered version.
TEMPLATE_KEY = "llm.prompt_template.template"

# What kind of operation the span is: a model call becomes an execution.
OPERATION = "gen_ai.operation.name"
MODEL_CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
VENDOR_MODEL_CALLS: tuple[tuple[str, frozenset[str]], ...] = (
    ("llm.request.type", frozenset({"chat", "completion"})),  # OpenLLMetry
    ("openinference.span.kind", frozenset({"LLM"})),  # OpenInference
    ("langfuse.observation.type", frozenset({"generation"})),  # Langfuse
)

MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name",
              "langfuse.observation.model.name")
INPUT_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                    "llm.token_count.prompt")
OUTPUT_TOKEN_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                     "llm.token_count.completion")
LANGFUSE_USAGE = "langfuse.observation.usage_details"  # JSON {"input": n, "output": n}
ERROR_TYPE = "error.type"
LANGFUSE_LEVEL = "langfuse.observation.level"  # "ERROR" marks a failed generation
MARKED_SUBJECT = "promptd.subject"  # the subject the SDK assigned the arm for
SUBJECT_KEYS = (MARKED_SUBJECT, "gen_ai.conversation.id", "session.id", "user.id",
                "langfuse.session.id", "langfuse.user.id")

# What promptd's SDK stamps on the agent's span at resolve() (see service.sdk).
DEPLOYMENT = "promptd.deployment.id"
ARM = "promptd.deployment.arm"
STEP = "promptd.deployment.step"
SDK_EXECUTION = "promptd.execution.id"  # execution() records the run itself

# Evaluations (LLM-as-judge and friends), on the span or as its events.
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_PREFIX = "gen_ai.evaluation."
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE = "gen_ai.evaluation.score.value"
EVALUATION_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
EVALUATION_KEYS = frozenset({EVALUATION_NAME, EVALUATION_SCORE, EVALUATION_LABEL,
                             EVALUATION_EXPLANATION})

SERVICE_NAME = "service.name"  # a resource attribute

SPAN_KEYS = frozenset({
    *(k for pair in PROMPT_KEYS for k in pair), TEMPLATE_KEY, OPERATION,
    *(k for k, _ in VENDOR_MODEL_CALLS), *MODEL_KEYS, *INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS,
    LANGFUSE_USAGE, ERROR_TYPE, LANGFUSE_LEVEL, *SUBJECT_KEYS, DEPLOYMENT, ARM, STEP,
    SDK_EXECUTION,
})
RESOURCE_KEYS = frozenset({SERVICE_NAME})

# The value type each key is written with by the instrumentations (OTLP AnyValue field);
# the decoder reads that field first and asks which one is set only when it is empty.
_INT_KEYS = frozenset({*INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS, STEP})
_EITHER_KEYS = frozenset(k for pair in PROMPT_KEYS for k in pair[1:])  # versions: int or text
EXPECTED_KIND: dict[str, str] = {
    key: "int_value" if key in _INT_KEYS else "string_value"
    for key in SPAN_KEYS if key not in _EITHER_KEYS
}
EXPECTED_KIND[EVALUATION_SCORE] = "double_value"


def wanted(key: str) -> bool:
    """Return True for a span attribute the mapping reads."""
    return key in SPAN_KEYS or key.startswith(EVALUATION_PREFIX)
