"""/healthz and /readyz with the whole stack up (issue 2)."""

import os

from feira import request


def test_healthz_answers_with_the_worker_pid(nginx):
    r = nginx.get("/healthz")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok"
    assert body["pid"] != nginx.master_pid()
    os.kill(body["pid"], 0)  # a live process of this machine


def test_readyz_names_every_dependency_up(nginx):
    r = nginx.get("/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ready",
                        "checks": {"mongo": "up", "redis": "up", "kafka": "up"}}


def test_health_endpoints_accept_only_get_and_head(nginx):
    assert request(nginx.port, "HEAD", "/healthz").status == 200
    assert request(nginx.port, "HEAD", "/healthz").body == b""
    r = nginx.post("/healthz", body={"x": 1})
    assert r.status == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["allow"] == "GET, HEAD"
    assert r.json()["status"] == 405
    assert request(nginx.port, "DELETE", "/readyz").status == 405


def test_stub_status_is_served_on_loopback(nginx):
    r = nginx.get("/nginx_status")
    assert r.status == 200
    assert b"Active connections:" in r.body
