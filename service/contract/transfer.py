"""The export file: prompts with their versions, labels and configs, to keep in git or move.

``GET /v1/export`` writes it, ``POST /v1/import`` reads it (``promptd prompts export`` and
``import`` as JSON or YAML). Importing never rewrites history: a version whose content
(template or messages, and config) equals one the prompt already has is that version, any
other is appended with the next number, and labels move to the versions they name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .chat import ChatContent
from .fields import PromptName, Strict
from .labels import LABEL_MAX, LabelName, label_problem

EXPORT_FORMAT = "promptd.prompts/v1"
MAX_IMPORT_VERSIONS = 1_000  # per prompt; more is not a prompt's history, it is a dump


class ExportedVersion(ChatContent):
    """One version as exported: its content and where it came from."""

    version: int = Field(..., ge=1, description="its number where it was exported")
    parent: int | None = Field(None, ge=1, description="the version it derives from")
    author: Annotated[str, Field(max_length=200)] = Field("", description="who wrote it there")
    strategy: Annotated[str, Field(max_length=64)] = Field(
        "", description="how it was written there (manual, or an improver strategy)")
    rationale: Annotated[str, Field(max_length=5000)] = Field("", description="why")
    created_at: float | None = Field(None, description="when, there (unix seconds)")


class ExportedPrompt(Strict):
    """A prompt as exported: description, versions (oldest first), labels, protections."""

    name: PromptName = Field(description="the prompt's name")
    description: Annotated[str, Field(max_length=2000)] = Field(
        "", description="what the prompt is for")
    versions: Annotated[list[ExportedVersion],
                        Field(min_length=1, max_length=MAX_IMPORT_VERSIONS)] = Field(
        description="its versions, oldest first")
    labels: dict[Annotated[str, Field(max_length=LABEL_MAX)], int] = Field(
        default_factory=dict, description="label -> the exported version number it points at")
    protected: list[LabelName] | None = Field(None, description=(
        "labels only admin tokens move; an import protects them (it never lifts one)"))

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, int]) -> dict[str, int]:
        for label in value:
            problem = label_problem(label)
            if problem is not None:
                raise ValueError(f"{label}: {problem}")
        return value

    @model_validator(mode="after")
    def _references(self) -> ExportedPrompt:
        numbers = [v.version for v in self.versions]
        if len(set(numbers)) != len(numbers):
            raise ValueError("versions: each version number at most once")
        for label, version in self.labels.items():
            if version not in numbers:
                raise ValueError(f"labels.{label}: names version {version}, which is not "
                                 "among the exported versions")
        return self


class PromptExport(Strict):
    """An export file: one or more prompts."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "format": EXPORT_FORMAT, "exported_at": 1_780_000_000.0, "prompts": [{
            "name": "support/triage", "description": "first-line ticket triage",
            "versions": [{"version": 1, "template": "Triage this ticket: {{ ticket }}",
                          "author": "token:5d41402abc4b", "strategy": "manual"},
                         {"version": 2, "parent": 1, "template": "Triage this ticket: "
                          "{{ ticket }}\nWrite dates as YYYY-MM-DD.", "strategy": "additive",
                          "rationale": "reviewers flagged dates not in ISO format"}],
            "labels": {"production": 2, "staging": 2}, "protected": ["production"]}]}]})
    format: Literal["promptd.prompts/v1"] = Field(EXPORT_FORMAT, description="the file format")
    exported_at: float | None = Field(None, description="when it was written (unix seconds)")
    prompts: Annotated[list[ExportedPrompt], Field(min_length=1, max_length=1_000)] = Field(
        description="the prompts")
