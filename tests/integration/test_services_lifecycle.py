"""feira_services, the lifecycle table: every action by every kind of
actor from every state, legal or not, against the real stack.  The
expectations are read from the one table (ngx_feira_services_lifecycle.c):
a legal transition answers 200 with the next state; an illegal one changes
nothing and answers 409 with the current status (an actor who may take the
action from another state), 403 (an actor who never may) or 404 (someone
who is not part of the request)."""

import os
import re

import pytest

from feira import wait_for
from requestutil import (accept, cancel, client, complete, create_category,
                         create_request, provider, start)
from test_services_requests import assert_problem, state

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TABLE = os.path.join(ROOT, "nginx-modules", "services",
                     "ngx_feira_services_lifecycle.c")

ACTIONS = ("accept", "start", "complete", "cancel")
STATES = ("open", "accepted", "in_progress", "completed", "cancelled",
          "expired")


def table():
    """{(from, action): (to, {actor bits})} from the C table."""
    with open(TABLE) as f:
        src = f.read()
    rows = re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*"(\w+)",\s*([A-Z|]+),',
                      src)
    assert len(rows) >= 7
    return {(f, a): (t, set(actors.split("|"))) for f, a, t, actors in rows}


# who calls, and the actor bits they hold on the request
ACTORS = {
    "client": {"CLIENT"},
    "assigned": {"PROVIDER", "ASSIGNED"},
    "other_provider": {"PROVIDER"},
    "stranger_client": set(),
}


def expected(rows, st, action, actor):
    bits = ACTORS[actor]
    if st in ("open", "cancelled", "expired") and actor == "assigned":
        bits = {"PROVIDER"}              # reached without an accept
    row = rows.get((st, action))
    if row and row[1] & bits:
        return 200, row[0]
    if not bits:
        return 404, None
    if any(a == action and v[1] & bits for (f, a), v in rows.items()):
        return 409, None
    return 403, None


@pytest.fixture(scope="module")
def cast(nginx_factory_module):
    n = nginx_factory_module
    cat = create_category(n)["slug"]
    people = {
        "client": client(n),
        "stranger_client": client(n),
        "assigned": provider(n, cat, -23.55, -46.63),
        "other_provider": provider(n, cat, -23.551, -46.63),
    }
    return n, cat, people


@pytest.fixture(scope="module")
def nginx_factory_module():
    from feira import Nginx
    n = Nginx()
    n.set_directive("feira_services_request_ttl", "8s")
    n.set_directive("feira_services_sweep_interval", "200ms")
    n.start()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    yield n
    n.stop()
    n.check_log()
    n.cleanup()


def reach(n, cat, people, st):
    """A fresh request in state st, through the API only."""
    c, p = people["client"], people["assigned"]
    rid = create_request(n, c, cat)["id"]
    if st == "expired":
        wait_for(lambda: n.get(f"/v1/requests/{rid}", token=c["token"])
                 .json()["status"] == "expired", timeout=15,
                 what="expired")
        return rid
    path = {"open": [], "accepted": [accept],
            "in_progress": [accept, start],
            "completed": [accept, start, complete],
            "cancelled": [cancel]}[st]
    for step in path:
        who = c if step is cancel else p
        step(n, who, rid)
    return rid


@pytest.mark.parametrize("st", STATES)
def test_every_action_by_every_actor(cast, st):
    n, cat, people = cast
    rows = table()
    rid = None
    for action in ACTIONS:
        for actor in ACTORS:
            code, to = expected(rows, st, action, actor)
            if rid is None:
                rid = reach(n, cat, people, st)
            before = state(rid)
            r = n.post(f"/v1/requests/{rid}/{action}",
                       token=people[actor]["token"])
            where = (st, action, actor)
            if code == 200:
                assert r.status == 200, (where, r.body)
                assert r.json()["status"] == to, where
                rid = None               # moved on: a fresh one next
                continue
            body = assert_problem(r, code)
            if code == 409:
                assert body["current_status"] == st, where
                assert body["request"]["status"] == st, where
            assert state(rid) == before, where
            doc = n.get(f"/v1/requests/{rid}",
                        token=people["client"]["token"]).json()
            assert doc["status"] == st, where


def test_the_table_covers_the_contract():
    rows = table()
    assert rows[("open", "accept")][0] == "accepted"
    assert rows[("accepted", "start")][0] == "in_progress"
    assert rows[("in_progress", "complete")][0] == "completed"
    for st in ("open", "accepted", "in_progress"):
        assert rows[(st, "cancel")][0] == "cancelled"
    assert ("completed", "cancel") not in rows
    assert rows[("open", "expire")] == ("expired", {"SYSTEM"})
