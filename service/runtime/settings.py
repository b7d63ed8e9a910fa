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

from improver.render_budget import RenderBudget
from service.store.database import check_sqlite_url

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
    # Admission control. Beyond these the daemon answers 503 with Retry-After at once, before
    # reading the body, instead of queueing work its clients will have given up on. An
    # admitted request waits at most about (its class's cap / that class's throughput).
    max_in_flight: int = Field(
        512, ge=1, description="requests served at once (health probes aside); beyond: 503")
    max_in_flight_ingest: int = Field(
        256, ge=1, description="requests posting events served at once; beyond: 503")
    max_in_flight_resolve: int = Field(
        256, ge=1, description="resolve requests served at once; beyond: 503")
    max_in_flight_admin: int = Field(
        64, ge=1, description="requests to every other route served at once; beyond: 503")
    max_ingest_bytes_in_flight: int = Field(
        2**20, ge=1024, description="request body bytes of ingest requests served at "
        "once (parsing and committing cost grows with them); beyond: 503")
    latency_budget_s: float = Field(
        0.25, gt=0, description="event-loop delay beyond which the ingest-bytes and admin "
        "caps shrink (halving, down to 1/8) until it is back under half of it")
    retry_after_s: int = Field(
        1, ge=1, le=3600, description="Retry-After (seconds) of a 503 when over capacity")
    occurred_at_max_age_s: float = Field(
        30 * 86_400.0, gt=0, description="an event's occurred_at may lie this far in the past")
    occurred_at_max_ahead_s: float = Field(
        300.0, ge=0, description="... and this far in the future (clock skew)")
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
    otlp_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="POST /v1/traces: US dollars per million tokens by model, as JSON, e.g. "
        "'{\"gpt-4o-mini\": {\"input\": 0.15, \"output\": 0.6}}' (a dated model name "
        "takes the longest entry it starts with)")
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
    gate_cases: int = Field(20, ge=0, le=200, description=(
        "with an LLM: corrected inputs replayed through candidate and control before a "
        "canary (0: no offline gate)"))
    gate_max_calls: int = Field(200, ge=1, description=(
        "LLM calls one improve run's offline gate may make (4 per replayed case)"))
    gate_max_tokens: int = Field(400_000, ge=1_000, description=(
        "LLM tokens one improve run's offline gate may spend"))
    # A template is data from users and from an LLM: every render runs under a budget.
    render_max_steps: int = Field(100_000, ge=1_000, description=(
        "work one render may do (sandbox operations, loop iterations; ~0.1 us each)"))
    render_max_seconds: float = Field(0.05, gt=0, description=(
        "CPU seconds one render may take on the daemon (a backstop to the step budget)"))
    render_max_output_chars: int = Field(2_000_000, ge=1_000, description=(
        "largest text one render may produce"))

    def occurred_window(self, now: float) -> tuple[float, float]:
        """Return the oldest and newest time (unix seconds) an agent event may have run at.

        Events (occurred_at) and OTLP spans (their end) are both held to it.
        """
        return now - self.occurred_at_max_age_s, now + self.occurred_at_max_ahead_s

    def render_budget(self) -> RenderBudget:
        """Return the budget every render on the daemon runs under."""
        return RenderBudget(max_output_chars=self.render_max_output_chars,
                            max_steps=self.render_max_steps,
                            max_seconds=self.render_max_seconds)

    @field_validator("otlp_prices")
    @classmethod
    def _prices_per_direction(cls, value: dict[str, dict[str, float]]
                              ) -> dict[str, dict[str, float]]:
        for model, price in value.items():
            if set(price) != {"input", "output"} or min(price.values()) < 0:
                raise ValueError(f"{model}: give non-negative 'input' and 'output' prices")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        if value.startswith("sqlite"):
            check_sqlite_url(value)
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
