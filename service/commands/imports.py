"""The import decision: append an exported prompt's versions and move its labels.

History is never rewritten. A version whose content (template or messages, and config)
equals one the prompt already has is that version; any other is appended with the next
number; labels then move to the versions the file names (``kind`` set, the importer as
actor). So importing the same file twice changes nothing the second time, and importing a
file edited in git appends exactly the versions that changed. One prompt is one decision
on its stream: all of it lands, or none of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.commands.aggregates import PromptAggregate
from service.commands.handler import CommandRefused, Decide, Outcome
from service.contract import system
from service.contract.labels import PRODUCTION

IMPORT_STRATEGY = "import"


def content_key(v: system.VersionCreated) -> str:
    """Return what makes two versions the same version: their content and config."""
    messages = (None if v.messages is None
                else [m.to_json() for m in v.messages])
    return json.dumps([v.template, messages, v.config], sort_keys=True, ensure_ascii=False)


def import_prompt(name: str, description: str, versions: Sequence[system.VersionCreated],
                  labels: Mapping[str, int], protected: Sequence[str] | None, *,
                  source: str, actor: str) -> Decide[PromptAggregate]:
    """Return the decision importing one prompt.

    ``versions`` carry their exported numbers and parents (oldest first); ``labels`` name
    exported numbers. A new prompt gets ``production`` on the version the file labels so,
    else on its first version. Production does not move while a deployment runs (409).
    ``protected`` labels become protected; none loses its protection by an import.
    """
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        events: list[system.SystemEvent] = []
        if not agg.created:
            events.append(system.PromptCreated(prompt=name, description=description,
                                               actor=actor))
        known = {content_key(v): n for n, v in sorted(agg.versions.items())}
        mapping: dict[int, int] = {}
        added: list[int] = []
        number = agg.latest_version
        for v in sorted(versions, key=lambda x: x.version):
            key = content_key(v)
            if key in known:
                mapping[v.version] = known[key]
                continue
            number += 1
            parent = mapping.get(v.parent) if v.parent is not None else None
            events.append(v.model_copy(update={
                "prompt": name, "version": number, "parent": parent, "author": actor,
                "strategy": IMPORT_STRATEGY, "actor": actor}))
            known[key] = mapping[v.version] = number
            added.append(number)
        wanted = {label: mapping[v] for label, v in labels.items()}
        if not agg.created and PRODUCTION not in wanted:
            wanted[PRODUCTION] = mapping[min(mapping)]
        moved: dict[str, dict[str, Any]] = {}
        for label, target in sorted(wanted.items()):
            current = agg.labels.get(label)
            if current == target:
                continue
            if label == PRODUCTION and agg.active_deployment is not None:
                active = agg.active_deployment
                raise CommandRefused(409, "conflict", f"cannot move production of {name!r} "
                                     f"while deployment {active.deployment_id} is "
                                     f"{active.phase.value}; nothing of it was imported")
            events.append(system.LabelMoved(
                prompt=name, label=label, version=target, previous=current, kind="set",
                reason=f"imported from {source}", actor=actor))
            moved[label] = {"from": current, "to": target}
        # Protections are only added: lifting one is an admin's deliberate act, never a
        # side effect of a file that forgot to list it.
        for label in sorted(set(protected or ()) - agg.protected):
            events.append(system.LabelProtected(prompt=name, label=label, protected=True,
                                                reason=f"imported from {source}", actor=actor))
        return Outcome(events, answer={
            "prompt": name, "created": not agg.created, "added": added,
            "versions": {str(k): v for k, v in sorted(mapping.items())}, "labels": moved})
    return decide
