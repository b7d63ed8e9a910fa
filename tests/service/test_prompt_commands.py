"""The pure decisions on a prompt aggregate: numbering, one deployment, rollback's meaning."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from deploy.decision import decision
from deploy.policy import CanaryPolicy
from service.commands import CommandRefused, PromptAggregate
from service.commands import deployments as dep
from service.commands import registry as reg
from service.commands.handler import Decide
from service.contract import system
from service.store.eventlog import StoredEvent

NAME = "unit/p"


def _apply(agg: PromptAggregate, events: Sequence[system.SystemEvent]) -> PromptAggregate:
    return agg.evolve([StoredEvent(agg.version + i + 1, f"e{agg.version + i}", e.TYPE,
                                   e.stream(), float(agg.version + i), e.payload(),
                                   agg.version + i + 1) for i, e in enumerate(events)])


def _run(agg: PromptAggregate, decide: Decide[PromptAggregate]) -> PromptAggregate:
    return _apply(agg, decide(agg).events)


def _prompt(*live: str) -> PromptAggregate:
    agg = _run(PromptAggregate(NAME), reg.create_prompt(NAME, "v1", [], "", "admin"))
    for template in live:
        agg = _run(agg, reg.add_version(NAME, template, [], rationale="", parent=None,
                                        make_production=True, actor="admin"))
    return agg


def _rollback(agg: PromptAggregate, **kw: object) -> tuple[PromptAggregate, bool]:
    args: dict[str, object] = {"to": None, "expected_from": None, "deployment_id": None,
                               "reason": "", "actor": "admin", **kw}
    out = reg.rollback(NAME, **args)(agg)  # type: ignore[arg-type]
    return _apply(agg, out.events), bool(out.events)


def test_version_numbers_come_from_the_stream_and_follow_the_highest() -> None:
    agg = _prompt()
    out = reg.add_version(NAME, "v2", [], rationale="", parent=None, make_production=False,
                          actor="a")(agg)
    assert out.answer == 2 and out.events[0].version == 2  # type: ignore[attr-defined]
    assert _apply(agg, out.events).versions[2].template == "v2"


def test_a_plain_rollback_undoes_the_newest_move_once_and_never_toggles() -> None:
    agg = _prompt("v2", "v3")
    agg, changed = _rollback(agg)
    assert changed and agg.production == 2
    for _ in range(3):  # repeated (a retry, a second admin): nothing more happens
        agg, changed = _rollback(agg)
        assert not changed and agg.production == 2


def test_rollback_from_the_current_version_goes_back_one_more_step_of_the_stack() -> None:
    agg, _ = _rollback(_prompt("v2", "v3"))
    agg, changed = _rollback(agg, expected_from=2)
    assert changed and agg.production == 1
    with pytest.raises(CommandRefused, match="no earlier"):
        _rollback(agg, expected_from=1)


def test_rollback_from_a_version_already_rolled_back_is_a_no_op() -> None:
    agg, _ = _rollback(_prompt("v2", "v3"), expected_from=3)
    agg, changed = _rollback(agg, expected_from=3)
    assert not changed and agg.production == 2


def test_rollback_from_a_version_that_moved_forward_since_is_a_conflict() -> None:
    agg = _prompt("v2", "v3")
    with pytest.raises(CommandRefused, match="moved since"):
        _rollback(agg, expected_from=2)


def _deploy(agg: PromptAggregate, machine: bool) -> PromptAggregate:
    return _run(agg, dep.start_deployment(NAME, [agg.latest_version], CanaryPolicy(),
                                          actor="promptd" if machine else "admin",
                                          requires_approval=False, machine_written=machine))


def test_rollback_with_a_running_deployment_stops_it_and_keeps_production() -> None:
    agg = _deploy(_run(_prompt(), reg.add_version(
        NAME, "v2", [], rationale="", parent=None, make_production=False, actor="a")), False)
    agg, changed = _rollback(agg)
    assert changed and agg.production == 1 and agg.active_deployment is None
    agg, changed = _rollback(agg)  # the retry: the deployment's end was the newest change
    assert not changed and agg.production == 1


def test_a_prompt_runs_at_most_one_deployment_and_a_person_supersedes_a_machine() -> None:
    base = _run(_prompt(), reg.add_version(NAME, "v2", [], rationale="", parent=None,
                                           make_production=False, actor="a"))
    machine = _deploy(base, machine=True)
    with pytest.raises(CommandRefused, match="one at a time"):
        _deploy(machine, machine=True)
    person = _deploy(machine, machine=False)
    phases = sorted(d.phase.value for d in person.deployments.values())
    assert phases == ["running", "superseded"]
    with pytest.raises(CommandRefused, match="one at a time"):
        _deploy(person, machine=False)  # a person's canary is never superseded


def test_a_person_who_asks_not_to_supersede_gets_409_naming_the_machine_canary() -> None:
    base = _run(_prompt(), reg.add_version(NAME, "v2", [], rationale="", parent=None,
                                           make_production=False, actor="a"))
    machine = _deploy(base, machine=True)
    (held,) = machine.deployments
    queued = dep.start_deployment(NAME, [2], CanaryPolicy(), actor="admin",
                                  requires_approval=False, machine_written=False,
                                  supersede_machine=False)
    with pytest.raises(CommandRefused, match="one at a time") as refused:
        queued(machine)
    assert refused.value.status == 409
    assert refused.value.details == [{"field": "prompt", "message": f"held by {held}"}]


def test_a_tick_decision_on_a_deployment_that_changed_since_appends_nothing() -> None:
    agg = _deploy(_run(_prompt(), reg.add_version(
        NAME, "v2", [], rationale="", parent=None, make_production=False, actor="a")), False)
    state = agg.active_deployment
    assert state is not None
    promote = decision("deployment.promoted", state.deployment_id, actor="promptd",
                       reason="tick", winner="c1", version=2, full=False, trigger="non_inferior")
    paused = _run(agg, dep.admin_command(NAME, state.deployment_id, "pause", actor="admin"))
    assert dep.tick_decision(state, promote)(paused).events == []
    fresh = dep.tick_decision(state, promote)(agg).events
    assert [e.TYPE for e in fresh] == ["deployment.promoted", "label.moved"]
    assert _apply(agg, fresh).production == 2


def test_an_ended_deployment_accepts_no_further_decision() -> None:
    agg = _deploy(_run(_prompt(), reg.add_version(
        NAME, "v2", [], rationale="", parent=None, make_production=False, actor="a")), False)
    dep_id = next(iter(agg.deployments))
    ended = _run(agg, dep.admin_command(NAME, dep_id, "rollback", actor="admin"))
    for command in ("promote", "pause", "approve", "rollback"):
        with pytest.raises(CommandRefused, match="already rolled_back"):
            dep.admin_command(NAME, dep_id, command, actor="admin")(ended)
