"""Settings come from defaults, a TOML file and PROMPTD_* variables, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.runtime.settings import Settings


def test_defaults_keep_everything_local() -> None:
    s = Settings()
    assert s.host == "127.0.0.1"
    assert s.database_url.startswith("sqlite:///var/")
    assert s.is_sqlite


def test_toml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "promptd.toml"
    cfg.write_text('port = 9100\ncanary_interval_s = 5.0\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("PROMPTD_CONFIG", str(cfg))
    monkeypatch.setenv("PROMPTD_PORT", "9200")
    s = Settings()
    assert s.canary_interval_s == 5.0 and s.host == "0.0.0.0"
    assert s.port == 9200  # the environment wins over the file


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTD_DATABASE_URL", "mysql://x")
    with pytest.raises(ValidationError, match="database_url"):
        Settings()


def test_unknown_keys_in_the_file_are_errors(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "promptd.toml"
    cfg.write_text("prot = 1\n")
    monkeypatch.setenv("PROMPTD_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_a_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTD_CONFIG", "/nonexistent/promptd.toml")
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        Settings()
