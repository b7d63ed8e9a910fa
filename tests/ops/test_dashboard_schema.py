"""The dashboard against Grafana's own schema, as the Grafana Foundation SDK encodes it.

The SDK's models are generated from Grafana's dashboard schema and each panel plugin's
(options, field config) and each datasource's query schema. The dashboard must decode into
them with no key the schema does not know, every value of the type the schema declares,
every panel a real panel plugin and every query a Prometheus query, and encode back to the
same JSON: what Grafana would load is exactly what we wrote.
"""

from __future__ import annotations

import copy
import enum
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as gf
from grafana_foundation_sdk.models import prometheus

from tests.ops.artifacts import load_dashboard

plugins.register_default_plugins()

# Keys the schema leaves open to datasource plugins, which the SDK's typed models do not
# carry: the Prometheus annotation query's own fields, and a query variable's definition.
OPEN_KEYS = {
    "annotations.list[]": {"step", "titleFormat", "textFormat", "tagKeys", "useValueForTime"},
    "templating.list[]": {"definition"},
    "": {"id"},  # null: Grafana assigns it on import
}


def _conforms(value: Any, hint: Any, where: str) -> list[str]:
    """Return how ``value`` fails the type the schema declares (empty when it conforms)."""
    origin = get_origin(hint)
    if hint is Any or hint is object:  # e.g. a panel's options: typed by its plugin
        return _check(value, where) if _is_model(value) else []
    if origin in (Union, types.UnionType):
        failures = [_conforms(value, arm, where) for arm in get_args(hint)]
        return [] if any(not f for f in failures) else [f"{where}: {value!r:.60} is not {hint}"]
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{where}: {value!r} not in {get_args(hint)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r:.60} is not a list"]
        (arm,) = get_args(hint) or (Any,)
        return [e for i, v in enumerate(value) for e in _conforms(v, arm, f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r:.60} is not an object"]
        arm = get_args(hint)[1] if get_args(hint) else Any
        return [e for k, v in value.items() for e in _conforms(v, arm, f"{where}.{k}")]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        ok = isinstance(value, hint) or value in {m.value for m in hint}
        return [] if ok else [f"{where}: {value!r} is not a {hint.__name__}"]
    if hint in (bool, int, float, str):
        kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}[hint]
        ok = isinstance(value, kinds) and (hint is bool or not isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r:.60} is not {hint.__name__}"]
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return [f"{where}: {type(value).__name__} is not {hint.__name__}"]
        return _check(value, where) if _is_model(value) else []
    return [f"{where}: the check does not know the type {hint}"]


def _is_model(value: Any) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.models")


def _check(obj: Any, where: str) -> list[str]:
    """Return every attribute of a decoded SDK object that fails its declared type."""
    return [e for name, hint in typing.get_type_hints(type(obj)).items() if hasattr(obj, name)
            for e in _conforms(getattr(obj, name), hint, f"{where}.{name}")]


def _lost(written: Any, encoded: Any, where: str = "", shape: str = "") -> list[str]:
    """Return keys of the written JSON the schema dropped, and values it changed.

    ``shape`` is ``where`` with list indices as ``[]``, the form ``OPEN_KEYS`` is keyed by.
    """
    if isinstance(written, dict) and isinstance(encoded, dict):
        open_keys = OPEN_KEYS.get(shape, set())
        out = [f"{where}.{k}" for k in written if k not in encoded and k not in open_keys]
        return out + [e for k in written if k in encoded
                      for e in _lost(written[k], encoded[k], f"{where}.{k}".lstrip("."),
                                     f"{shape}.{k}".lstrip("."))]
    if isinstance(written, list) and isinstance(encoded, list):
        if len(written) != len(encoded):
            return [f"{where}: {len(written)} items became {len(encoded)}"]
        return [e for i, (w, x) in enumerate(zip(written, encoded, strict=True))
                for e in _lost(w, x, f"{where}[{i}]", f"{shape}[]")]
    return [] if written == encoded else [f"{where}: {written!r:.40} became {encoded!r:.40}"]


def problems(board: dict[str, Any]) -> list[str]:
    """Return every way ``board`` fails Grafana's dashboard schema (empty: it loads as is)."""
    decoded = gf.Dashboard.from_json(copy.deepcopy(board))
    found = _check(decoded, "dashboard")
    for panel in decoded.panels or []:
        if isinstance(panel, gf.RowPanel):
            continue
        if cogruntime.panelcfg_config(panel.type_val) is None:
            found.append(f"panel {panel.title!r}: {panel.type_val!r} is no panel plugin")
            continue
        if isinstance(panel.options, dict):
            found.append(f"panel {panel.title!r}: options did not decode for {panel.type_val}")
        for target in panel.targets or []:
            if not isinstance(target, prometheus.Dataquery):
                found.append(f"panel {panel.title!r}: a target is not a Prometheus query")
    encoded = json.loads(json.dumps(decoded, cls=JSONEncoder))
    return found + _lost(board, encoded)


def test_the_dashboard_loads_into_grafanas_schema_unchanged() -> None:
    assert problems(load_dashboard()) == []


def _mutated(change: Any) -> dict[str, Any]:
    board = load_dashboard()
    change(board)
    return board


@pytest.mark.parametrize("name, change", [
    ("misspelled key", lambda b: b["panels"][1].__setitem__("gridpos", b["panels"][1]["gridPos"])),
    ("wrong type", lambda b: b["panels"][1]["gridPos"].__setitem__("w", "8")),
    ("unknown panel type", lambda b: b["panels"][1].__setitem__("type", "timeserie")),
    ("unknown option", lambda b: b["panels"][1]["options"].__setitem__("legnd", {})),
    ("enum out of range", lambda b: b.__setitem__("graphTooltip", 7)),
    ("bad literal", lambda b: b["panels"][1]["options"]["legend"].__setitem__(
        "displayMode", "grid")),
])
def test_the_check_rejects_what_grafana_would(name: str, change: Any) -> None:
    assert problems(_mutated(change)), name
