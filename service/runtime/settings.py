"""Daemon settings: defaults, then an optional TOML file, then ``PROMPTD_*`` environment."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "PROMPTD_CONFIG"


class Settings(BaseSettings):
    """Everything the daemon can be told; each field is also ``PROMPTD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PROMPTD_", extra="forbid")

    database_url: str = Field(
        "sqlite:///var/promptd.db",
        description="SQLAlchemy URL of the event log: sqlite:///path or postgresql+psycopg://...",
    )
    host: str = Field("127.0.0.1", description="bind address (loopback by default)")
    port: int = Field(8077, ge=0, le=65535, description="TCP port (0 picks a free one)")
    token_file: Path = Field(
        Path("var/admin.token"), description="where the first start writes the admin token (0600)"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body")
    max_batch_events: int = Field(1000, ge=1, description="most events in one POST /v1/events")
    writer_queue_max: int = Field(
        10_000, ge=1, description="queued append requests before ingest answers 503"
    )
    writer_max_group: int = Field(
        5000, ge=1, description="most events committed together in one group commit"
    )
    mine_interval_s: float = Field(300.0, gt=0, description="seconds between mining runs")
    improve_interval_s: float = Field(600.0, gt=0, description="seconds between improve runs")
    canary_interval_s: float = Field(60.0, gt=0, description="seconds between canary ticks")
    refresh_interval_s: float = Field(
        1.0, gt=0, description="seconds between read-model catch-ups from other writers"
    )
    scheduler_enabled: bool = Field(True, description="run mining, improve and canary jobs")
    mining_window_s: float = Field(3600.0, gt=0, description="width of one mining window")
    mining_windows: int = Field(24, ge=2, description="windows of history mining looks at")
    max_patterns: int = Field(20, ge=1, description="patterns kept in one snapshot")
    improve_min_pattern_size: int = Field(
        5, ge=1, description="a pattern needs this many records before the improver acts")
    improve_min_pattern_share: float = Field(
        0.01, ge=0, le=1, description="... and this share of the latest window's executions")
    improve_candidates: int = Field(
        3, ge=1, le=3, description="candidate versions per improve run (canary arms)")
    improve_cooldown_s: float = Field(
        1800.0, ge=0, description="quiet time per prompt after a deployment ends")
    canary_policy: dict[str, Any] = Field(
        default_factory=dict,
        description="default canary policy overrides as JSON, e.g. '{\"min_step_seconds\": 600}'")
    improve_requires_approval: bool = Field(
        False, description="machine-written candidates wait for `promptd approve`")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="least severe log line written: debug, info, warning or error")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON lines unless stderr is a terminal"
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL for the LLM rewriter (off when unset)"
    )
    llm_model: str = Field("gpt-4o-mini", description="model name sent to the LLM endpoint")
    llm_api_key: str | None = Field(None, description="bearer key for the LLM endpoint")

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_path = os.environ.get(CONFIG_ENV)
        if config_path:
            if not Path(config_path).is_file():
                raise FileNotFoundError(f"{CONFIG_ENV}={config_path}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_path))
        return tuple(sources)

    @property
    def is_sqlite(self) -> bool:
        """True when the log lives in an embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def settings_help() -> str:
    """Return one line per setting: env var, default and meaning (for ``serve --help``)."""
    lines = [f"settings (environment, or a TOML file named by {CONFIG_ENV}):"]
    width = max(len(name) for name in Settings.model_fields)
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else json.dumps(default) if isinstance(
            default, dict) else default
        lead = f"  PROMPTD_{name.upper():<{width}}  "
        lines += textwrap.wrap(f"{field.description} [default: {shown}]", 100,
                               initial_indent=lead, subsequent_indent=" " * len(lead),
                               break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)
