"""Issue 19, item 12: the API documents itself completely, and /docs works offline."""

from __future__ import annotations

import re
import types
import uuid
from html.parser import HTMLParser
from typing import Any, Union, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.http import (
    admin,
    events,
    health,
    labels,
    patterns,
    prompts,
    report,
    rollout,
    traces,
    transfer,
)
from tests.support import LiveDaemon

# The contract with generated clients: renaming one of these breaks them, so it is deliberate.
OPERATION_IDS = {
    "add_version", "all_candidates", "create_deployment", "create_prompt", "deployment_action",
    "diff_versions", "get_events", "get_patterns", "get_policy", "get_prompt", "get_report",
    "get_version", "healthz", "issue_token", "list_deployments", "list_prompts", "list_tokens",
    "metrics", "post_correction", "post_events", "post_execution", "post_traces",
    "prompt_candidates",
    "prompt_history", "put_policy", "readyz", "render", "resolve", "revoke_token",
    "rollback_prompt", "run_job", "show_deployment", "status",
    "list_labels", "set_label", "protect_label", "export", "import_prompts",
}
PUBLIC = {"healthz", "readyz", "metrics"}
# Answers in a format another specification owns (Prometheus text, OTLP messages).
FOREIGN = {"metrics", "post_traces"}


def _app(live: LiveDaemon) -> FastAPI:
    app = live.server.server.config.app  # the app uvicorn serves
    assert isinstance(app, FastAPI)
    return app


def _routes() -> dict[str, APIRoute]:
    """Return every API route by its function's name, from the routers the app includes."""
    modules = (admin, events, health, labels, patterns, prompts, report, rollout, traces,
               transfer)
    return {r.name: r for m in modules for r in m.router.routes if isinstance(r, APIRoute)}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items()
            for method, op in ops.items()]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_docs_page_loads_swagger_ui_from_the_daemon_itself(live: LiveDaemon) -> None:
    page = httpx.get(f"{live.url}/docs", timeout=30)
    assert page.status_code == 200 and "swagger" in page.text.lower()
    parser = _Assets()
    parser.feed(page.text)
    scripts = [u for u in parser.urls if u.endswith((".js", ".css"))]
    assert len(scripts) >= 2, parser.urls
    for url in parser.urls:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere"
        asset = httpx.get(f"{live.url}{url}", timeout=30)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "cdn" not in page.text and "https://" not in page.text
    bundle = httpx.get(f"{live.url}{next(u for u in scripts if u.endswith('.js'))}", timeout=30)
    assert "javascript" in bundle.headers["content-type"]


def test_schema_declares_bearer_auth_on_every_route_that_needs_a_token(
        live: LiveDaemon) -> None:
    schema = _app(live).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    for method, path, op in _operations(schema):
        if op["operationId"] in PUBLIC:
            assert "security" not in op, path
        else:
            assert op["security"] == [{"bearer": []}], (method, path)


def test_operation_ids_are_the_function_names_and_pinned(live: LiveDaemon) -> None:
    ids = [op["operationId"] for _, _, op in _operations(_app(live).openapi())]
    assert len(ids) == len(set(ids))
    assert set(ids) == OPERATION_IDS
    models = _app(live).openapi()["components"]["schemas"]
    assert not [n for n in models if re.search(r"_v1_|Response[A-Z0-9]|_(get|post|put)$", n)]


def _response_model(route: APIRoute) -> type[BaseModel] | None:
    for model in (route.response_model, route.responses.get(200, {}).get("model")):
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    return None


def test_every_success_response_is_typed_and_has_a_real_example(live: LiveDaemon) -> None:
    app = _app(live)
    schema = app.openapi()
    components = schema["components"]["schemas"]
    routes = _routes()
    for method, path, op in _operations(schema):
        [(code, answer)] = [(c, a) for c, a in op["responses"].items() if c.startswith("2")]
        assert answer.get("description"), (method, path)
        content = answer["content"]
        if op["operationId"] == "metrics":
            assert content["text/plain"]["example"].startswith("# HELP")
            continue
        if op["operationId"] == "post_traces":  # ExportTraceServiceResponse, OTLP's own
            assert set(content) == {"application/x-protobuf", "application/json"}
            continue
        ref = content["application/json"]["schema"].get("$ref", "")
        assert ref.startswith("#/components/schemas/"), (method, path, code)
        component = components[ref.rsplit("/", 1)[1]]
        [example] = component["examples"]
        model = _response_model(routes[op["operationId"]])
        assert model is not None, path
        model.model_validate(example)
        assert _undocumented(model, example) == [], path


def test_every_property_of_every_schema_has_a_description(live: LiveDaemon) -> None:
    components = _app(live).openapi()["components"]["schemas"]
    missing = [f"{name}.{prop}" for name, comp in components.items()
               for prop, spec in comp.get("properties", {}).items()
               if not spec.get("description")]
    assert missing == []


# -- every route, called on a real daemon, answers only what its schema documents ---------

def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (list, Union, types.UnionType, tuple):
        return [m for a in get_args(annotation) for m in _models_in(a)]
    return []


def _undocumented(model: type[BaseModel], data: Any, where: str = "") -> list[str]:
    if isinstance(data, list):
        return [x for i, item in enumerate(data) for x in _undocumented(model, item,
                                                                      f"{where}[{i}]")]
    if not isinstance(data, dict):
        return []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    out = []
    for key, value in data.items():
        if key not in fields:
            out.append(f"{model.__name__}{where}.{key}")
            continue
        for inner in _models_in(fields[key].annotation):
            out += _undocumented(inner, value, f"{where}.{key}")
    return out


def _exercise(live: LiveDaemon) -> list[tuple[str, httpx.Response]]:
    """Call every route once with a valid request; return (operationId, response)."""
    admin, agent = live.client(), live.client(live.issue("agent"))
    calls: list[tuple[str, httpx.Response]] = []

    def call(op: str, client: httpx.Client, method: str, path: str, **kw: Any) -> Any:
        response = client.request(method, path, **kw)
        assert response.is_success, (op, response.status_code, response.text)
        calls.append((op, response))
        return response.json() if op not in FOREIGN else None

    name = "support/triage"
    call("create_prompt", admin, "POST", "/v1/prompts",
         json={"name": name, "template": "Triage {{ ticket }}"})
    call("add_version", admin, "POST", f"/v1/prompts/{name}/versions",
         json={"template": "Triage {{ ticket }} kindly", "rationale": "kinder"})
    call("list_prompts", admin, "GET", "/v1/prompts")
    call("get_version", admin, "GET", f"/v1/prompts/{name}/versions/2")
    call("diff_versions", admin, "GET", f"/v1/prompts/{name}/diff", params={"from": 1, "to": 2})
    call("render", agent, "POST", f"/v1/prompts/{name}/render",
         json={"variables": {"ticket": "printer on fire"}})
    call("resolve", agent, "GET", f"/v1/prompts/{name}/resolve", params={"subject": "u-1"})
    ids = [str(uuid.uuid4()) for _ in range(40)]
    call("post_events", agent, "POST", "/v1/events", json={"events": [
        {"type": "execution", "event_id": i, "prompt": name, "version": 1, "success": False,
         "latency_ms": 800.0, "cost_usd": 0.001} for i in ids]})
    call("post_execution", agent, "POST", "/v1/executions",
         json={"prompt": name, "version": 1, "success": True})
    for i in ids[:-1]:
        agent.post("/v1/corrections", json={"execution_id": i, "prompt": name, "version": 1,
                                            "category": "format",
                                            "reason": "the date is not in ISO format"})
    call("post_correction", agent, "POST", "/v1/corrections",
         json={"execution_id": ids[-1], "prompt": name, "version": 1, "category": "format",
               "reason": "the date is not in ISO format"})
    call("get_events", admin, "GET", "/v1/events", params={"last": 5})
    call("run_job", admin, "POST", "/v1/jobs/mine")
    call("get_patterns", admin, "GET", f"/v1/prompts/{name}/patterns")
    call("get_policy", admin, "GET", f"/v1/prompts/{name}/policy")
    call("put_policy", admin, "PUT", f"/v1/prompts/{name}/policy",
         json={"overrides": {"steps": [10, 50, 100]}})
    dep = call("create_deployment", admin, "POST", "/v1/deployments",
               json={"prompt": name, "versions": [2]})["deployment_id"]
    call("list_deployments", admin, "GET", "/v1/deployments", params={"all": "true"})
    call("show_deployment", admin, "GET", f"/v1/deployments/{dep}")
    call("deployment_action", admin, "POST", f"/v1/deployments/{dep}/pause", json={})
    call("rollback_prompt", admin, "POST", f"/v1/prompts/{name}/rollback", json={})
    call("prompt_history", admin, "GET", f"/v1/prompts/{name}/history")
    call("prompt_candidates", admin, "GET", f"/v1/prompts/{name}/candidates")
    call("all_candidates", admin, "GET", "/v1/candidates")
    call("get_prompt", admin, "GET", f"/v1/prompts/{name}")
    call("set_label", admin, "PUT", f"/v1/prompts/{name}/labels/staging",
         json={"version": 2, "reason": "try it"})
    call("protect_label", admin, "POST", f"/v1/prompts/{name}/labels/staging/protect",
         json={"protected": True})
    call("list_labels", admin, "GET", f"/v1/prompts/{name}/labels")
    exported = call("export", admin, "GET", "/v1/export", params={"prompt": name})
    exported["prompts"][0]["versions"].append(
        {"version": 9, "parent": 2, "template": "Triage {{ ticket }}, imported"})
    exported["prompts"][0]["labels"]["staging"] = 9
    call("import_prompts", admin, "POST", "/v1/import", json=exported)
    call("get_report", admin, "GET", "/v1/report", params={"since": "7d"})
    token = call("issue_token", admin, "POST", "/v1/tokens", json={"role": "agent"})
    call("list_tokens", admin, "GET", "/v1/tokens")
    call("revoke_token", admin, "DELETE", f"/v1/tokens/{token['token_id']}")
    call("status", admin, "GET", "/v1/status")
    call("healthz", admin, "GET", "/healthz")
    call("readyz", admin, "GET", "/readyz")
    call("metrics", admin, "GET", "/metrics")
    call("post_traces", agent, "POST", "/v1/traces", json={"resourceSpans": []})
    return calls


@pytest.mark.slow
def test_every_route_answers_only_what_its_schema_documents(live: LiveDaemon) -> None:
    routes = _routes()
    calls = _exercise(live)
    assert {op for op, _ in calls} == OPERATION_IDS  # a new route must be exercised here
    for op, response in calls:
        if op == "metrics":
            assert response.headers["content-type"].startswith("text/plain")
            continue
        if op == "post_traces":
            assert response.headers["content-type"].startswith("application/json")
            continue
        model = _response_model(routes[op])
        assert model is not None, op
        body = response.json()
        model.model_validate(body)
        assert _undocumented(model, body) == [], op
