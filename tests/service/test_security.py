"""Security of a real ``promptd serve`` process: tokens, roles, logs, file modes, limits, templates.

The daemon runs as a child process started under a permissive umask (so nothing is 0600 by
accident) and logs JSON lines at debug level to a file this module reads back.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import DaemonProcess, start_process

PROMPT = "support/triage"
TEMPLATE = "Answer the ticket {{ ticket }} for {{ customer }}."
MAX_BODY = 8192
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
AGENT_ROUTES = {
    ("POST", "/v1/events"), ("POST", "/v1/executions"), ("POST", "/v1/corrections"),
    ("GET", "/v1/prompts/{name}/resolve"), ("POST", "/v1/prompts/{name}/render"),
    ("POST", "/v1/traces"),
    # An agent may move an unprotected label (the decision refuses protected ones).
    ("PUT", "/v1/prompts/{name}/labels/{label}"),
}
# A wrong secret behind a well-formed token, so a leak into the log would be easy to spot.
FORGED_SECRET = "forgedsecretforgedsecretforgedsecret0000"

# Reaches for Python internals, the file system or other templates: refused before storing.
INJECTIONS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__call__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ ticket|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ '{0.__class__}'.format(ticket) }}",
    "{{ ticket.mro() }}",
    "{{ ticket.gi_frame.f_globals }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% from 'os' import popen %}",
    "Hello {{ name ",
]
# Parse fine, but would eat memory or CPU when rendered: the sandbox stops them at render time.
BOMBS = [
    "{{ 'a' * 10**9 }}",
    "{{ 2**10000000 }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ '%999999999s' % 'a' }}",
    "{{ '{:999999999}'.format(1) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
]
# Each of these built a ~300 MB string, or looped for 35 s, before the render budget; the
# budget refuses them from their arguments, so lint refuses them when they are stored.
BUDGET_BOMBS = [
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{{ '%*d' % (300000000, 1) }}",
    "{{ '{:>{}}'.format('a', 300000000) }}",
    "{{ 'a'.ljust(300000000) }}",
    "{{ 'a'|center(300000000) }}",
    "{{ '%300000000s'|format('a') }}",
    "{{ ('a' * 100000).replace('a', 'a' * 3000) }}",
]
# Fine with the sample values lint renders at creation, explosive with what an agent sends.
VARIABLE_BOMB = ("{{ x * n }}", {"x": "a", "n": 300_000_000})


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """``promptd serve`` started under umask 000, logging at debug level, small body limit."""
    data = tmp_path_factory.mktemp("security")
    previous = os.umask(0)
    try:
        proc = start_process(data, extra_env={"PROMPTD_LOG_LEVEL": "debug",
                                              "PROMPTD_MAX_BODY_BYTES": str(MAX_BODY)})
    finally:
        os.umask(previous)
    try:
        admin = _client(proc, proc.admin_token)
        admin.post("/v1/prompts", json={"name": PROMPT, "template": TEMPLATE}).raise_for_status()
        yield proc
    finally:
        proc.terminate()


def _client(daemon: DaemonProcess, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=daemon.url, headers=headers, timeout=30)


def _issue(daemon: DaemonProcess, role: str) -> dict[str, Any]:
    r = _client(daemon, daemon.admin_token).post("/v1/tokens", json={"role": role,
                                                                      "name": f"sec-{role}"})
    r.raise_for_status()
    return dict(r.json())


def _routes(daemon: DaemonProcess, *, with_body: bool = False) -> list[tuple[str, str]]:
    schema = httpx.get(f"{daemon.url}/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m, op in ops.items()
                  if "requestBody" in op or not with_body)


def _concrete(path: str) -> str:
    return (path.replace("{name}", PROMPT).replace("{version}", "1")
            .replace("{token_id}", "abc").replace("{deployment_id}", "d-1")
            .replace("{action}", "pause").replace("{job}", "canary")
            .replace("{label}", "staging"))


def _head(daemon: DaemonProcess) -> int:
    r = _client(daemon, daemon.admin_token).get("/v1/events", params={"limit": 1})
    return int(r.json()["head"])


def _bad_credentials(daemon: DaemonProcess) -> dict[str, dict[str, str]]:
    """Return the ways to present no valid token, by name."""
    admin_id = daemon.admin_token.split("_")[2]
    revoked = _issue(daemon, "admin")
    _client(daemon, daemon.admin_token).delete(f"/v1/tokens/{revoked['token_id']}")
    return {
        "none": {},
        "empty bearer": {"Authorization": "Bearer"},
        "no scheme": {"Authorization": daemon.admin_token},
        "basic scheme": {"Authorization": f"Basic {daemon.admin_token}"},
        "forged secret": {"Authorization": f"Bearer pd_admin_{admin_id}_{FORGED_SECRET}"},
        "unknown id": {"Authorization": f"Bearer pd_admin_000000000000_{FORGED_SECRET}"},
        "revoked": {"Authorization": f"Bearer {revoked['token']}"},
        "huge": {"Authorization": "Bearer " + "x" * 6000},
    }


def test_every_route_but_health_refuses_a_missing_wrong_forged_or_revoked_token(
    daemon: DaemonProcess,
) -> None:
    credentials = _bad_credentials(daemon)
    routes = [r for r in _routes(daemon) if r not in PUBLIC]
    assert len(routes) >= 25
    before = _head(daemon)
    refused = []
    client = _client(daemon, None)
    for method, path in routes:
        # A malformed body too: the refusal must not depend on what the body holds.
        for content in (b"{}", b"{not json", b"\xff\xfe\x00"):
            for name, headers in credentials.items():
                r = client.request(method, _concrete(path), content=content,
                                   headers={**headers, "content-type": "application/json"})
                if r.status_code != 401 or r.headers.get("www-authenticate") != "Bearer":
                    refused.append((method, path, name, content, r.status_code))
                elif r.json()["error"]["code"] != "unauthorized":
                    refused.append((method, path, name, content, r.text))
    assert not refused, refused
    assert _head(daemon) == before  # nothing a refused caller sent reached the log


def test_an_agent_token_cannot_reach_any_admin_route(daemon: DaemonProcess) -> None:
    agent = _client(daemon, _issue(daemon, "agent")["token"])
    before = _head(daemon)
    wrong = []
    for method, path in _routes(daemon):
        if (method, path) in PUBLIC | AGENT_ROUTES:
            continue
        for content in (b"{}", b"{not json"):
            r = agent.request(method, _concrete(path), content=content,
                              headers={"content-type": "application/json"})
            if r.status_code != 403 or "admin" not in r.json()["error"]["message"]:
                wrong.append((method, path, content, r.status_code))
    assert not wrong, wrong
    assert _head(daemon) == before
    # ... while the agent routes answer it (404/422 are about the request, not the token).
    for method, path in sorted(AGENT_ROUTES):
        r = agent.request(method, _concrete(path), json={})
        assert r.status_code not in (401, 403), (method, path, r.status_code)


def test_tokens_never_appear_in_the_log_file_or_any_answer(daemon: DaemonProcess) -> None:
    agent = _issue(daemon, "agent")
    admin_two = _issue(daemon, "admin")
    secrets = {daemon.admin_token, agent["token"], admin_two["token"], FORGED_SECRET}
    _bad_credentials(daemon)  # a revoked admin token and forged ones, in the log's time frame
    revoked = next(t for t in _client(daemon, daemon.admin_token).get("/v1/tokens").json()[
        "tokens"] if t["revoked"])
    assert revoked
    # Traffic of every kind: good and failed auth, ingest, admin reads, a revocation.
    a = _client(daemon, agent["token"])
    a.get(f"/v1/prompts/{PROMPT}/resolve", params={"subject": "u1"}).raise_for_status()
    a.post("/v1/executions", json={"prompt": PROMPT, "version": 1, "success": True,
                                   "subject": "u1"}).raise_for_status()
    for token in secrets:
        httpx.get(f"{daemon.url}/v1/status", headers={"Authorization": f"Bearer {token}x"})
        httpx.get(f"{daemon.url}/v1/status", headers={"Authorization": f"Bearer {token}",
                                                      "X-Request-Id": "t"})
    admin = _client(daemon, daemon.admin_token)
    admin.delete(f"/v1/tokens/{admin_two['token_id']}").raise_for_status()
    answers = [admin.get(p).text for p in ("/v1/tokens", "/v1/status", "/metrics")]
    answers.append(admin.get("/v1/events", params={"limit": 10_000}).text)

    log = next(daemon.data_dir.glob("daemon-*.log")).read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert sum(r.get("event") == "request" for r in records) >= 15, "the log was not captured"
    assert any(r.get("status") == 401 for r in records), "failed auth was not logged"
    for secret in secrets:
        # The secret part alone too: a token is pd_<role>_<id>_<secret>, and the id is public
        # (the secret itself may hold "_").
        part = secret.split("_", 3)[-1]
        assert len(part) >= 40
        assert part not in log, "a token secret is in the daemon log"
        assert all(part not in text for text in answers), "a token secret is in an answer"


def test_the_database_its_journal_and_the_token_file_are_0600(daemon: DaemonProcess) -> None:
    _client(daemon, daemon.admin_token).post("/v1/tokens", json={"role": "agent"})  # write
    files = [daemon.data_dir / "promptd.db", daemon.data_dir / "admin.token"]
    files += [p for p in daemon.data_dir.glob("promptd.db-*")]
    assert {p.name for p in files} >= {"promptd.db", "promptd.db-wal", "admin.token"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
    assert (daemon.data_dir / "admin.token").read_text().strip() == daemon.admin_token


def test_oversized_bodies_get_413_on_every_route_that_takes_one(daemon: DaemonProcess) -> None:
    admin, anonymous = _client(daemon, daemon.admin_token), _client(daemon, None)
    before = _head(daemon)
    huge = json.dumps({"events": [{"prompt": PROMPT, "x": "y" * MAX_BODY}]}).encode()

    def streamed() -> Iterator[bytes]:  # no content-length: the limit must hold while reading
        for _ in range(4):
            yield b" " * MAX_BODY

    wrong = []
    takes_body = _routes(daemon, with_body=True)
    assert len(takes_body) >= 10
    for method, path in _routes(daemon):
        if method == "GET":
            continue
        # A route that reads no body never sees a streamed one; a declared length is enough.
        streams = [True, False] if (method, path) in takes_body else [False]
        for client in (admin, anonymous):
            for stream in streams:
                r = client.request(method, _concrete(path), content=streamed() if stream else huge,
                                   headers={"content-type": "application/json"})
                if r.status_code != 413 or r.json()["error"]["code"] != "body_too_large":
                    wrong.append((method, path, r.status_code))
    assert not wrong, wrong
    assert _head(daemon) == before
    assert httpx.get(f"{daemon.url}/healthz").status_code == 200


@pytest.mark.parametrize("template", INJECTIONS)
def test_template_injection_payloads_are_refused_before_anything_is_stored(
    daemon: DaemonProcess, template: str,
) -> None:
    admin = _client(daemon, daemon.admin_token)
    before = _head(daemon)
    created = admin.post("/v1/prompts", json={"name": "evil/new", "template": template})
    added = admin.post(f"/v1/prompts/{PROMPT}/versions", json={"template": template})
    for r in (created, added):
        assert r.status_code == 422, (template, r.status_code, r.text)
        assert r.json()["error"]["details"][0]["field"] == "template"
    assert _head(daemon) == before


def test_resource_bombs_are_stopped_at_render_quickly_and_the_daemon_keeps_serving(
    daemon: DaemonProcess,
) -> None:
    admin = _client(daemon, daemon.admin_token)
    agent = _client(daemon, _issue(daemon, "agent")["token"])
    for i, template in enumerate(BUDGET_BOMBS):
        created = admin.post("/v1/prompts", json={"name": f"budget/b{i}", "template": template})
        assert created.status_code == 422, (template, created.status_code)
        assert created.json()["error"]["code"] == "render_budget_exceeded", created.text
        assert created.elapsed.total_seconds() < 2, template
    for i, template in enumerate(BOMBS):
        name = f"bomb/b{i}"
        created = admin.post("/v1/prompts", json={"name": name, "template": template})
        assert created.elapsed.total_seconds() < 2, template
        if created.status_code == 422:
            # Refused when stored: lint renders it under the daemon's render budget.
            assert created.json()["error"]["code"] == "render_budget_exceeded", created.text
            assert created.json()["error"]["details"][0]["field"] == "template"
            continue
        assert created.status_code == 201, created.text
        r = agent.post(f"/v1/prompts/{name}/render", json={"variables": {}})
        assert r.status_code == 422, (template, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] in ("render_error", "render_budget_exceeded")
        assert r.elapsed.total_seconds() < 2, template
    template, variables = VARIABLE_BOMB
    admin.post("/v1/prompts", json={"name": "bomb/var", "template": template}
               ).raise_for_status()
    r = agent.post("/v1/prompts/bomb/var/render", json={"variables": variables})
    assert r.status_code == 422 and r.json()["error"]["code"] == "render_budget_exceeded", r.text
    assert "max_value_len" in r.json()["error"]["message"] or "max_" in r.text
    assert r.elapsed.total_seconds() < 2
    assert httpx.get(f"{daemon.url}/healthz").status_code == 200


def test_variables_carrying_template_syntax_are_rendered_as_text(daemon: DaemonProcess) -> None:
    agent = _client(daemon, _issue(daemon, "agent")["token"])
    payloads = {
        "ticket": "{{ 7*7 }} {{ ''.__class__ }}",
        "customer": "{% for x in range(3) %}loop{% endfor %}{# c #}",
    }
    r = agent.post(f"/v1/prompts/{PROMPT}/render", json={"variables": payloads})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == TEMPLATE.replace("{{ ticket }}", payloads["ticket"]).replace(
        "{{ customer }}", payloads["customer"])
