"""The public surface of ``analytics.mining`` and the purity of its room."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import analytics.mining as mining

PACKAGE = Path(mining.__file__).parent


def test_all_lists_exactly_the_public_api() -> None:
    assert sorted(mining.__all__) == sorted([
        "Anomaly", "FailureRecord", "MiningConfig", "MiningResult", "Pattern",
        "PatternContext", "PatternExample", "ShareWindow", "WindowCounts", "count_windows",
        "detect_anomalies", "mine_patterns",
    ])
    for name in mining.__all__:
        assert getattr(mining, name) is not None


def test_mine_patterns_keeps_the_agreed_signature() -> None:
    params = inspect.signature(mining.mine_patterns).parameters
    assert list(params)[:5] == ["records", "now", "executions_in_window", "previous", "config"]
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY
               for p in ("now", "executions_in_window", "previous", "config"))
    anomaly_params = inspect.signature(mining.detect_anomalies).parameters
    assert anomaly_params["z_threshold"].default == 3.0
    assert anomaly_params["min_trailing"].default == 3


def test_value_types_are_frozen_dataclasses() -> None:
    for cls in (mining.MiningConfig, mining.MiningResult, mining.WindowCounts, mining.Anomaly,
                mining.Pattern, mining.PatternExample, mining.FailureRecord,
                mining.PatternContext, mining.ShareWindow):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_mining_imports_nothing_of_ours_outside_analytics_and_does_no_io() -> None:
    forbidden_modules = {"service", "improver", "deploy", "os", "pathlib", "time", "datetime",
                         "random", "uuid", "socket", "sqlalchemy", "httpx"}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                raise AssertionError(f"{path.name} opens a file")
            else:
                continue
            assert not roots & forbidden_modules, (path.name, roots)


def test_every_module_stays_readable_in_one_sitting() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 500, path.name


def test_the_data_model_loads_without_the_clustering_stack() -> None:
    import subprocess
    import sys

    code = ("import sys, analytics.mining.model, analytics.mining\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & {"sklearn", "analytics.mining.patterns", "analytics.mining.features"}
