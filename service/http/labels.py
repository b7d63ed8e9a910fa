"""Labels: list them with their history, move one, protect one.

Every move is a command on the prompt's stream (``registry.move_label``): decided on the
prompt as committed, appended at the stream version it was decided on, with the caller as
actor. An agent token may move an unprotected label; a protected one (``production``
unless an admin lifted it) needs an admin token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from service.commands import PromptAggregate
from service.contract import LabelProtect, LabelSet
from service.contract.label_views import LabelProtectResult, LabelSetResult, LabelsView
from service.contract.labels import LABEL_MAX, LATEST, LabelName
from service.http.deps import Admin, Agent, CommandsDep, DaemonDep
from service.http.errors import error_responses
from service.http.prompts import NamePath, _prompt

router = APIRouter(prefix="/v1/prompts", tags=["labels"],
                   responses=error_responses(401, 404, 413, 422))
LabelPath = Annotated[LabelName, Path(description="a label name, e.g. staging")]


def labels_view(agg: PromptAggregate, label: str | None = None) -> dict[str, Any]:
    """Return a prompt's labels (version, protection, last move) and their history."""
    history = agg.label_history(label)
    last = {m.label: m for m in agg.label_history()}
    labels = []
    for name, version in sorted(agg.all_labels().items()):
        if label is not None and name != label:
            continue
        move = last.get(name)
        labels.append({"label": name, "version": version, "protected": name in agg.protected,
                       "automatic": name == LATEST,
                       "moved_at": move.at if move else None,
                       "moved_by": move.actor if move else None})
    return {"prompt": agg.name, "labels": labels,
            "protected": sorted(agg.protected),
            "history": [m.to_json() for m in history]}


@router.get("/{name:path}/labels", response_model=LabelsView, responses=error_responses(403),
            summary="A prompt's labels and who moved them, when and why")
def list_labels(name: NamePath, daemon: DaemonDep, commands: CommandsDep, _: Admin,
                label: str | None = Query(None, max_length=LABEL_MAX,
                                          description="only this label")) -> dict[str, Any]:
    """Return every label with its version and protection, and every move, oldest first.

    A move says which label went from which version to which, who moved it, when, why and
    how (``set``, ``promotion`` by a canary, ``rollback``). ``latest`` follows the newest
    version by itself and has no moves.
    """
    _prompt(daemon, name)
    return labels_view(commands.handler.prompt(name), label)


@router.put("/{name:path}/labels/{label}", response_model=LabelSetResult,
            responses=error_responses(400, 403, 409, 503),
            summary="Point a label at a version")
def set_label(name: NamePath, label: LabelPath, body: LabelSet, daemon: DaemonDep,
              commands: CommandsDep, who: Agent) -> dict[str, Any]:
    """Append label.moved (kind set) unless the label already points there.

    ``from`` is the version you saw the label at (0: not set): if someone moved it since,
    the answer is 409 naming who, and nothing changes. Moving a protected label needs an
    admin token (403 otherwise); production does not move while a canary runs.
    """
    _prompt(daemon, name)
    outcome = commands.move_label(name, label, body.version, expected_from=body.from_,
                                  reason=body.reason, actor=who.actor,
                                  admin=who.role == "admin")
    return dict(outcome.answer)


@router.post("/{name:path}/labels/{label}/protect", response_model=LabelProtectResult,
             responses=error_responses(400, 403, 503),
             summary="Protect a label, or lift its protection")
def protect_label(name: NamePath, label: LabelPath, body: LabelProtect, daemon: DaemonDep,
                  commands: CommandsDep, who: Admin) -> dict[str, Any]:
    """Append label.protected: a protected label moves only with an admin token."""
    _prompt(daemon, name)
    outcome = commands.protect_label(name, label, body.protected, reason=body.reason,
                                     actor=who.actor)
    return dict(outcome.answer)
