"""Export and import: prompts with their versions, labels and configs as one document.

Teams keep prompts in git and move them between environments with these. The whole file
is validated (every template of every version, as creating it would be) before anything is
appended, and each prompt is then one command on its stream (``imports.import_prompt``):
it appends the versions that are new and moves the labels, never rewriting history.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query

from service.commands import PromptAggregate
from service.contract import system
from service.contract.label_views import ImportResult
from service.contract.labels import LATEST
from service.contract.transfer import EXPORT_FORMAT, ExportedPrompt, PromptExport
from service.http.deps import Admin, CommandsDep, DaemonDep
from service.http.errors import ApiError, error_responses, refuse_nul
from service.http.prompts import _prompt, checked_content
from service.projections.views import VersionInfo

router = APIRouter(prefix="/v1", tags=["prompts"], responses=error_responses(401, 403, 413, 422))


def _exported_version(v: VersionInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"version": v.version, "parent": v.parent, "author": v.author,
                           "strategy": v.strategy, "rationale": v.rationale,
                           "created_at": v.created_at}
    if v.messages is not None:
        out["messages"] = v.messages_json()
    else:
        out["template"] = v.template
    if v.config is not None:
        out["config"] = v.config
    return out


def export_prompt(versions: list[VersionInfo], agg: PromptAggregate) -> dict[str, Any]:
    """Return one prompt's entry of an export file."""
    return {"name": agg.name, "description": agg.description,
            "versions": [_exported_version(v) for v in versions],
            "labels": {k: v for k, v in sorted(agg.labels.items()) if k != LATEST},
            "protected": sorted(agg.protected)}


@router.get("/export", response_model=PromptExport, responses=error_responses(404),
            summary="Export prompts with their versions, labels and configs")
def export(daemon: DaemonDep, commands: CommandsDep, _: Admin,
           prompt: list[str] | None = Query(None, description="these prompts (default: all)")
           ) -> dict[str, Any]:
    """Return the export document ``POST /v1/import`` reads (``promptd prompts export``)."""
    refuse_nul(prompt=prompt)
    registry = daemon.live.registry
    names = sorted(registry.prompts) if not prompt else list(dict.fromkeys(prompt))
    out = []
    for name in names:
        _prompt(daemon, name)
        out.append(export_prompt(registry.versions_of(name), commands.handler.prompt(name)))
    return {"format": EXPORT_FORMAT, "exported_at": time.time(), "prompts": out}


def _checked_versions(daemon: DaemonDep, index: int, prompt: ExportedPrompt,
                      actor: str) -> list[system.VersionCreated]:
    """Return the prompt's versions as events to append; 422 naming the field that fails."""
    events = []
    for j, v in enumerate(prompt.versions):
        try:
            template, variables = checked_content(daemon, v, prompt.name)
        except ApiError as exc:
            where = f"prompts[{index}].versions[{j}]."
            raise ApiError(exc.status, exc.code, where + exc.message,
                           [{**d, "field": where + d["field"]} for d in exc.details]) from exc
        origin = f"v{v.version}" + (f" by {v.author}" if v.author else "") + (
            f" ({v.strategy})" if v.strategy else "")
        # The author and numbers are placeholders: the command numbers the new versions on
        # the prompt's stream and credits the importer.
        events.append(system.VersionCreated(
            prompt=prompt.name, version=v.version, template=template, messages=v.messages,
            config=v.config, variables=variables, parent=v.parent, author=actor,
            strategy="import", rationale=(f"imported {origin}: {v.rationale}")[:5000],
            actor=actor))
    return events


@router.post("/import", response_model=ImportResult,
             responses=error_responses(400, 409, 503),
             summary="Import prompts: append new versions, move labels")
def import_prompts(body: PromptExport, daemon: DaemonDep, commands: CommandsDep, who: Admin,
                   source: str = Query("a file", max_length=200,
                                       description="where the file came from, for the log")
                   ) -> dict[str, Any]:
    """Append each prompt's new versions and move its labels; never rewrite history.

    A version equal (content and config) to one the prompt has is that version; others are
    appended with the next numbers. Every version is checked before anything is appended.
    """
    refuse_nul(source=source)
    checked = [(p, _checked_versions(daemon, i, p, who.actor))
               for i, p in enumerate(body.prompts)]
    results = []
    for prompt, versions in checked:
        outcome = commands.import_prompt(prompt.name, prompt.description, versions,
                                         dict(prompt.labels), prompt.protected,
                                         source=source, actor=who.actor)
        results.append(outcome.answer)
    return {"imported": results}
