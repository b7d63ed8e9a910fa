"""Any interleaving of two actors' commands ends in a state some serial order also gives.

Two threads issue command sequences at once through the real command path (a real SQLite
log, the group-commit writer, expected-version appends and their retries). The end state
must equal the state of running both sequences one command at a time in some interleaving
that keeps each actor's order: the commands are linearizable, whatever the timing.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.policy import CanaryPolicy
from service.commands import CommandHandler, CommandRefused, PromptAggregate
from service.commands import deployments as dep
from service.commands import registry as reg
from service.commands.handler import Decide, Outcome
from service.projections import Projector, default_projections
from service.store.database import create_log_engine
from service.store.eventlog import StoredEvent
from service.store.writer import EventWriter

NAME = "prop/p"
POLICY = CanaryPolicy()
OPS = ("add", "add_live", "deploy", "promote", "stop", "rollback", "pause", "resume")


def _on_active(name: str, **kw: object) -> Decide[PromptAggregate]:
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        active = agg.active_deployment
        if active is None:
            raise CommandRefused(409, "conflict", "no deployment")
        command = dep.admin_command(NAME, active.deployment_id, name, actor="a",
                                    **kw)  # type: ignore[arg-type]
        return command(agg)
    return decide


def _deploy_latest(agg: PromptAggregate) -> Outcome[PromptAggregate]:
    return dep.start_deployment(NAME, [agg.latest_version], POLICY, actor="a",
                                requires_approval=False, machine_written=False)(agg)


def _command(op: str, actor: str, i: int) -> Decide[PromptAggregate]:
    """Return the decision function of one generated command."""
    if op in ("add", "add_live"):
        return reg.add_version(NAME, f"{actor}{i} {{{{ q }}}}", ["q"], rationale="",
                               parent=None, make_production=op == "add_live", actor=actor)
    if op == "deploy":
        return _deploy_latest
    if op == "promote":
        return _on_active("promote", full=True)
    if op == "stop":
        return _on_active("rollback")
    if op in ("pause", "resume"):
        return _on_active(op)
    return reg.rollback(NAME, to=None, expected_from=None, deployment_id=None, reason="",
                        actor=actor)


def _fingerprint(agg: PromptAggregate) -> tuple[object, ...]:
    """Return what a state is, without ids and times that differ between runs."""
    deployments = sorted(agg.deployments.values(), key=lambda d: d.started_at)
    return (tuple(sorted((n, v.template) for n, v in agg.versions.items())),
            tuple(sorted(agg.labels.items())),
            tuple((tuple((a.name, a.version) for a in d.arms), d.phase.value, d.step_index)
                  for d in deployments),
            tuple((m.version, m.previous, m.kind) for m in agg.history))


def _serial(order: list[Decide[PromptAggregate]]) -> tuple[object, ...]:
    agg = reg.create_prompt(NAME, "v1 {{ q }}", ["q"], "", "setup")(PromptAggregate(NAME))
    state = PromptAggregate(NAME).evolve(_stored(agg.events, 0))
    for decide in order:
        try:
            out = decide(state)
        except CommandRefused:
            continue
        state = state.evolve(_stored(out.events, state.version))
    return _fingerprint(state)


def _stored(events: object, version: int) -> list[StoredEvent]:
    # Serial runs order by position alone; started_at only sorts deployments (by step).
    return [StoredEvent(version + i + 1, f"e{version + i}", e.TYPE, e.stream(),
                        float(version + i), e.payload(), version + i + 1)
            for i, e in enumerate(events)]  # type: ignore[attr-defined]


def _interleavings(a: list[Decide[PromptAggregate]], b: list[Decide[PromptAggregate]]
                   ) -> set[tuple[object, ...]]:
    out = set()
    for slots in itertools.combinations(range(len(a) + len(b)), len(a)):
        ia, ib = iter(a), iter(b)
        out.add(_serial([next(ia) if k in slots else next(ib)
                         for k in range(len(a) + len(b))]))
    return out


commands = st.lists(st.sampled_from(OPS), min_size=1, max_size=4)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=commands, second=commands)
def test_two_actors_commands_end_in_a_state_some_serial_order_gives(
        tmp_path_factory: object, first: list[str], second: list[str]) -> None:
    where: Path = tmp_path_factory.mktemp("lin")  # type: ignore[attr-defined]
    engine = create_log_engine(f"sqlite:///{where / 'log.db'}")
    writer = EventWriter(engine, Projector(default_projections()))
    writer.start()
    handler = CommandHandler(engine, writer, clock=_counter())
    handler.on_prompt(NAME, reg.create_prompt(NAME, "v1 {{ q }}", ["q"], "", "setup"))
    a = [_command(op, "a", i) for i, op in enumerate(first)]
    b = [_command(op, "b", i) for i, op in enumerate(second)]
    barrier = threading.Barrier(2)

    def actor(decisions: list[Decide[PromptAggregate]]) -> None:
        barrier.wait()
        for decide in decisions:
            with contextlib.suppress(CommandRefused):  # refused in the serial runs too
                handler.on_prompt(NAME, decide)

    threads = [threading.Thread(target=actor, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    concurrent = _fingerprint(handler.prompt(NAME))
    writer.stop()
    engine.dispose()
    assert concurrent in _interleavings(a, b), (first, second, concurrent)


def _counter() -> Callable[[], float]:
    ticks = itertools.count()
    return lambda: float(next(ticks))
