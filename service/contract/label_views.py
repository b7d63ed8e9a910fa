"""What the label and import/export routes answer (typed, described, with real examples)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .responses import T0, with_example


class LabelRow(BaseModel):
    """One label of a prompt."""

    label: str = Field(description="its name")
    version: int = Field(description="the version it points at")
    protected: bool = Field(description="only admin tokens move it")
    automatic: bool = Field(description="true for latest, which follows the newest version")
    moved_at: float | None = Field(None, description="its last move (unix seconds)")
    moved_by: str | None = Field(None, description="who moved it last")


class LabelMoveOut(BaseModel):
    """One move of a label: from which version to which, by whom, when, why and how."""

    label: str = Field(description="the label moved")
    version: int = Field(description="the version it moved to")
    previous: int | None = Field(None, description="the version it pointed at before")
    kind: str = Field(description="set, promotion (by a canary) or rollback")
    actor: str = Field(description="who moved it")
    reason: str = Field(description="why")
    at: float = Field(description="when (unix seconds)")
    stream_version: int = Field(description="the prompt stream's version of the move")
    deployment_id: str | None = Field(None, description="the deployment that moved it")


_MOVE = {"label": "production", "version": 3, "previous": 2, "kind": "promotion",
         "actor": "promptd", "reason": "c1 better on success_rate", "at": T0,
         "stream_version": 12, "deployment_id": "dep-01a2370c"}


class LabelsView(BaseModel):
    """A prompt's labels and their history, oldest move first."""

    model_config = with_example({
        "prompt": "support/triage", "protected": ["production"], "history": [_MOVE],
        "labels": [{"label": "production", "version": 3, "protected": True,
                    "automatic": False, "moved_at": T0, "moved_by": "promptd"},
                   {"label": "latest", "version": 4, "protected": False, "automatic": True,
                    "moved_at": None, "moved_by": None}]})
    prompt: str = Field(description="the prompt")
    labels: list[LabelRow] = Field(description="every label, by name")
    protected: list[str] = Field(description="the protected labels")
    history: list[LabelMoveOut] = Field(description="every move, oldest first")


class LabelSetResult(BaseModel):
    """What moving a label did."""

    model_config = with_example({"prompt": "support/triage", "label": "staging", "version": 4,
                             "previous": 3, "changed": True})
    prompt: str = Field(description="the prompt")
    label: str = Field(description="the label")
    version: int = Field(description="the version it points at now")
    previous: int | None = Field(None, description="where it pointed before (null: unset)")
    changed: bool = Field(description="false when it already pointed there")


class LabelProtectResult(BaseModel):
    """What protecting (or lifting the protection of) a label did."""

    model_config = with_example({"prompt": "support/triage", "label": "staging",
                             "protected": True, "changed": True})
    prompt: str = Field(description="the prompt")
    label: str = Field(description="the label")
    protected: bool = Field(description="whether only admin tokens move it now")
    changed: bool = Field(description="false when it already was")


class LabelChange(BaseModel):
    """A label an import moved."""

    from_: int | None = Field(alias="from", description="the version it pointed at (null: unset)")
    to: int = Field(description="the version it points at now")


class ImportedPrompt(BaseModel):
    """What importing one prompt appended."""

    prompt: str = Field(description="the prompt")
    created: bool = Field(description="true when the import created it")
    added: list[int] = Field(description="the version numbers appended")
    versions: dict[str, int] = Field(description="exported version number -> its number here")
    labels: dict[str, LabelChange] = Field(description="the labels moved, by name")


class ImportResult(BaseModel):
    """What an import appended, per prompt."""

    model_config = with_example({"imported": [{
        "prompt": "support/triage", "created": False, "added": [5],
        "versions": {"1": 1, "2": 5}, "labels": {"staging": {"from": 4, "to": 5}}}]})
    imported: list[ImportedPrompt] = Field(description="one entry per prompt, in file order")
