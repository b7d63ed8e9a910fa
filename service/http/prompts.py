"""The prompt registry: create, version, diff, resolve and render prompts."""

from __future__ import annotations

import difflib
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from improver.chat import Message, changed_parts, chat_source, messages_from
from improver.lint import budget_issues
from improver.templates import (
    MissingVariableError,
    RenderBudgetExceeded,
    TemplateError,
    render_template,
    template_variables,
)
from service.contract import PromptCreate, RenderRequest, VersionCreate
from service.contract.chat import ChatContent, render_messages
from service.contract.responses import (
    PromptDetail,
    PromptList,
    PromptSummary,
    Rendered,
    Resolved,
    Version,
    VersionDiff,
)
from service.http.deps import Admin, Agent, CommandsDep, DaemonDep
from service.http.errors import ApiError, error_responses
from service.projections.views import PromptInfo, VersionInfo
from service.runtime.daemon import Daemon

router = APIRouter(prefix="/v1/prompts", tags=["prompts"],
                   responses=error_responses(401, 413, 422))
NamePath = Annotated[str, Path(description="prompt name, e.g. support/triage")]


def _prompt(daemon: Daemon, name: str) -> PromptInfo:
    info = daemon.live.registry.prompts.get(name)
    if info is None:
        raise ApiError(404, "not_found", f"unknown prompt {name!r}")
    return info


def _version(daemon: Daemon, name: str, version: int) -> VersionInfo:
    _prompt(daemon, name)
    info = daemon.live.registry.versions.get((name, version))
    if info is None:
        raise ApiError(404, "not_found", f"prompt {name!r} has no version {version}")
    return info


def _variables_of(daemon: Daemon, template: str, prompt: str | None = None,
                  field: str = "template") -> list[str]:
    """Return a new template's variables; 422 if it does not parse or breaks the budget.

    The template is rendered under the daemon's render budget with the variables agents
    recently sent (or sample values): a template that would stall every render is refused
    when it is created, not when an agent first resolves it.
    """
    try:
        variables = sorted(template_variables(template))
    except TemplateError as exc:
        raise ApiError(422, "invalid_template", f"{field}: {exc}",
                       [{"field": field, "message": str(exc)}]) from exc
    recorded = daemon.queries.recorded_variables(prompt) if prompt else []
    issues = budget_issues(template, recorded, budget=daemon.render_budget)
    if issues:
        message = "; ".join(i.message for i in issues)
        raise ApiError(422, "render_budget_exceeded", f"{field}: {message}",
                       [{"field": field, "message": message}])
    return variables


def checked_content(daemon: Daemon, body: ChatContent, prompt: str | None = None
                ) -> tuple[str, list[str]]:
    """Return (template, variables) of a new version; 422 naming the message that fails.

    A chat prompt's template is empty; every message is checked as a text template is, and
    a placeholder may not share its name with a variable (the agent passes both as keywords).
    """
    if body.messages is None:
        assert body.template is not None  # ChatContent: one of the two
        return body.template, _variables_of(daemon, body.template, prompt)
    variables: set[str] = set()
    for index, m in enumerate(body.messages):
        if m.role != "placeholder":
            variables.update(_variables_of(daemon, m.content, prompt,
                                           f"messages[{index}].content"))
    for index, m in enumerate(body.messages):
        if m.role == "placeholder" and m.name in variables:
            message = (f"placeholder {m.name!r} is also a variable of the messages; give the "
                       "inserted messages another name")
            raise ApiError(422, "validation_error", f"messages[{index}].name: {message}",
                           [{"field": f"messages[{index}].name", "message": message}])
    return "", sorted(variables)


def prompt_summary(daemon: Daemon, info: PromptInfo) -> dict[str, Any]:
    """Return the JSON summary of a prompt."""
    return {"name": info.name, "description": info.description, "created_at": info.created_at,
            "created_by": info.created_by, "latest_version": info.latest_version,
            "labels": info.labels}


@router.post("", status_code=201, response_model=PromptSummary,
             responses=error_responses(400, 403, 409, 503),
             summary="Create a prompt with its first version")
def create_prompt(body: PromptCreate, daemon: DaemonDep, commands: CommandsDep,
                  who: Admin) -> dict[str, Any]:
    """Append prompt.created, version.created (v1) and label.moved (production -> 1)."""
    template, variables = checked_content(daemon, body)
    commands.create_prompt(body.name, template, variables, body.description, who.actor,
                           messages=body.messages, config=body.config)
    return prompt_summary(daemon, _prompt(daemon, body.name))


@router.get("", response_model=PromptList, responses=error_responses(403),
            summary="List prompts")
def list_prompts(daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return every prompt with its labels and latest version."""
    return {"prompts": [prompt_summary(daemon, p)
                        for _, p in sorted(daemon.live.registry.prompts.items())]}


@router.post("/{name:path}/versions", status_code=201, response_model=Version,
             responses=error_responses(400, 403, 404, 409, 503), summary="Add a version")
def add_version(name: NamePath, body: VersionCreate, daemon: DaemonDep, commands: CommandsDep,
                who: Admin) -> dict[str, Any]:
    """Append version.created with the next number (and label.moved with make_production).

    The number comes from the prompt's stream: two callers adding at once get two numbers,
    and each answer is the version holding its own template.
    """
    template, variables = checked_content(daemon, body, name)
    outcome = commands.add_version(name, template, variables, rationale=body.rationale,
                                   parent=body.parent, make_production=body.make_production,
                                   actor=who.actor, messages=body.messages, config=body.config)
    return _version(daemon, name, int(outcome.answer)).to_dict()


@router.get("/{name:path}/versions/{version}", response_model=Version,
            responses=error_responses(403, 404),
            summary="Show one version")
def get_version(name: NamePath, version: int, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return a version's template, variables and provenance."""
    return _version(daemon, name, version).to_dict()


def _diff_lines(text: str) -> list[str]:
    # A last line without a newline would run into the next line of the diff; mark it as
    # git and diff(1) do, which also tells the two versions' endings apart.
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


@router.get("/{name:path}/diff", response_model=VersionDiff, responses=error_responses(403, 404),
            summary="Unified diff between two versions")
def diff_versions(
    name: NamePath, daemon: DaemonDep, _: Admin,
    from_: int = Query(..., alias="from", ge=1), to: int = Query(..., ge=1),
) -> dict[str, Any]:
    """Return the unified diff from one version to another, with the rationale.

    A chat prompt diffs as its messages (each under a ``[role]`` line) followed by its
    config; ``changed`` names the parts that differ (messages by index, config keys).
    """
    a, b = _version(daemon, name, from_), _version(daemon, name, to)
    diff = "".join(difflib.unified_diff(
        _diff_lines(_diff_text(a)), _diff_lines(_diff_text(b)),
        fromfile=f"{name}@v{a.version}", tofile=f"{name}@v{b.version}"))
    changed = changed_parts(_messages_of(a), _messages_of(b), a.config, b.config)
    if not a.is_chat and not b.is_chat and a.template != b.template:
        changed.insert(0, "template")
    return {"prompt": name, "from": a.version, "to": b.version, "diff": diff,
            "changed": changed, "strategy": b.strategy, "rationale": b.rationale,
            "addressed_patterns": list(b.addressed_patterns)}


def _messages_of(v: VersionInfo) -> tuple[Message, ...] | None:
    return messages_from(v.messages) if v.messages is not None else None


def _diff_text(v: VersionInfo) -> str:
    messages = _messages_of(v)
    text = v.template if messages is None else chat_source(messages) + "\n"
    if v.config is not None:
        config = json.dumps(v.config, indent=2, sort_keys=True, ensure_ascii=False)
        text += ("" if text.endswith("\n") else "\n") + "[config]\n" + config + "\n"
    return text


SUBJECT_MAX = 200  # bounds of resolve's query parameters (app.RequestGuard checks them too)
LABEL_MAX = 64


@router.get("/{name:path}/resolve", response_model=Resolved, responses=error_responses(404),
            summary="The version an agent should use now")
async def resolve(
    name: NamePath, daemon: DaemonDep, _: Agent,
    subject: str | None = Query(None, max_length=SUBJECT_MAX,
                                description="sticky assignment key, e.g. a user or session id"),
    label: str = Query("production", max_length=LABEL_MAX),
) -> Resolved:
    """Return the version (and deployment arm) to use for ``subject``."""
    # A coroutine although it never awaits: a plain def would run in the threadpool.
    started = time.perf_counter()
    _prompt(daemon, name)
    answer = daemon.resolver.answer(name, subject, label)
    if answer is None:
        raise ApiError(404, "not_found", f"prompt {name!r} has no label {label!r}")
    daemon.metrics.resolve_seconds.observe(time.perf_counter() - started)
    return answer


@router.post("/{name:path}/render", response_model=Rendered,
             responses=error_responses(400, 404),
             summary="Render a version in the sandbox")
def render(name: NamePath, body: RenderRequest, daemon: DaemonDep, _: Agent) -> dict[str, Any]:
    """Render a version (by number or label) with variables; a missing variable is a 422.

    A chat prompt answers ``messages`` (the list a chat API takes); its placeholders are
    filled from ``variables`` under their names (a list of messages each, passed through).
    """
    if body.version is not None:
        version = _version(daemon, name, body.version)
    else:
        _prompt(daemon, name)
        found = daemon.live.registry.version_for(name, body.label)
        if found is None:
            raise ApiError(404, "not_found", f"prompt {name!r} has no label {body.label!r}")
        version = found
    try:
        # A plain def: FastAPI runs it in its threadpool, and the budget bounds how long it
        # can hold the GIL away from resolve and ingest.
        if version.messages is not None:
            messages = render_messages(version.messages, body.variables,
                                       budget=daemon.render_budget, clock=time.thread_time)
            return {"prompt": name, "version": version.version, "text": None,
                    "messages": messages, "config": version.config}
        text = render_template(version.template, body.variables, budget=daemon.render_budget,
                               clock=time.thread_time)
    except RenderBudgetExceeded as exc:
        raise ApiError(422, "render_budget_exceeded", f"template: {exc}",
                       [{"field": "template", "message": str(exc)}]) from exc
    except MissingVariableError as exc:
        raise ApiError(422, "missing_variable", f"variables.{exc.variable}: {exc}",
                       [{"field": f"variables.{exc.variable}", "message": str(exc)}]) from exc
    except TemplateError as exc:
        raise ApiError(422, "render_error", str(exc),
                       [{"field": "variables", "message": str(exc)}]) from exc
    return {"prompt": name, "version": version.version, "text": text, "messages": None,
            "config": version.config}


@router.get("/{name:path}", response_model=PromptDetail, responses=error_responses(403, 404),
            summary="Show a prompt, its versions and their counts")
def get_prompt(name: NamePath, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return a prompt, its labels, versions (without templates) and per-version counts."""
    info = _prompt(daemon, name)
    counts = daemon.queries.counts(name)
    out = prompt_summary(daemon, info)
    out["versions"] = [
        {"version": v.version, "kind": "chat" if v.is_chat else "text", "parent": v.parent,
         "author": v.author, "strategy": v.strategy, "rationale": v.rationale,
         "created_at": v.created_at, "config": v.config,
         "labels": sorted(lbl for lbl, n in info.labels.items() if n == v.version),
         "counts": counts.get(v.version, {})}
        for v in daemon.live.registry.versions_of(name)
    ]
    return out
