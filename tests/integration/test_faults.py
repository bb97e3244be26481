"""A dependency stopped and restarted under a running nginx: /readyz turns
503 naming it within seconds, then 200 again without restarting nginx."""

import pytest

from feira import service, wait_for


def readyz(n):
    r = n.get("/readyz", timeout=15)
    return r.status, r.headers.get("content-type"), r.json()


@pytest.mark.parametrize("dep", ["redis", "mongo", "kafka"])
def test_readyz_follows_a_dependency_down_and_back(nginx, dep):
    master = nginx.master_pid()
    healthz_pid = nginx.get("/healthz").json()["pid"]

    service("stop", dep)
    try:
        status, ctype, body = wait_for(
            lambda: (lambda s: s if s[0] == 503 else None)(readyz(nginx)),
            timeout=10, what=f"/readyz 503 with {dep} down")
        assert ctype == "application/problem+json"
        assert body["status"] == 503
        assert dep in body["detail"]
        assert {"field": dep, "message": "down"} in body["errors"]
        # only the one that is down is named
        assert [e["field"] for e in body["errors"]] == [dep]
        # the process still serves
        assert nginx.get("/healthz").status == 200
    finally:
        service("start", dep)

    wait_for(lambda: readyz(nginx)[0] == 200, timeout=60,
             what=f"/readyz 200 after {dep} came back")
    assert nginx.master_pid() == master
    assert nginx.get("/healthz").json()["pid"] == healthz_pid
