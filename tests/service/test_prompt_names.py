"""Prompt names can never be shadowed by the routes under /v1/prompts/{name}/..."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from service.contract import PromptCreate
from service.contract.fields import ROUTE_SUFFIXES
from service.http.app import openapi_routes
from service.server import build
from tests.support import make_settings

PROMPT_ROUTES = "/v1/prompts/{name}/"


def test_every_route_after_a_prompt_name_is_refused_as_the_end_of_a_name(
    tmp_path: Path,
) -> None:
    app = build(make_settings(tmp_path), registry=CollectorRegistry()).app()
    tails = {path.removeprefix(PROMPT_ROUTES) for _, path in openapi_routes(app)
             if path.startswith(PROMPT_ROUTES)}
    assert {"resolve", "versions/{version}", "policy"} <= tails  # the routes were found
    for tail in tails:
        assert tail.split("/")[0] in ROUTE_SUFFIXES, f"/{tail} would shadow x/{tail}"
        shadowed = "x/" + tail.replace("{version}", "1").replace("{label}", "staging")
        with pytest.raises(ValidationError, match="must not end in"):
            PromptCreate(name=shadowed, template="t")
