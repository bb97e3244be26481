"""Service requests cached in Redis for reads (feira:request:<id>,
ngx_feira_services_cache.c): written through on every change before the
answer, filled by reads that miss, never put back to an older state, and
serving reads while MongoDB is away."""

import json
import threading

from bson import ObjectId

from feira import request, service, wait_for
from requestutil import (accept, cancel, client, complete, db, new_category,
                         new_request, provider, rdb, start)


def cached(rid):
    """(rank, request) in the cache, or None."""
    raw = rdb().get(f"feira:request:{rid}")
    if raw is None:
        return None
    rank, doc = raw.split(" ", 1)
    return int(rank), json.loads(doc)


def get(n, rid, who):
    return n.get(f"/v1/requests/{rid}", token=who["token"])


def test_every_change_is_in_the_cache_before_its_answer(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)

    rid = new_request(nginx, c, cat)["id"]
    rank, doc = cached(rid)
    assert (rank, doc["status"]) == (0, "open")
    assert doc["offered_to"] == [p["id"]]
    assert doc["client_id"] == c["id"]
    assert 0 < rdb().ttl(f"feira:request:{rid}") <= 300

    for action, status, want in [(accept, "accepted", 1),
                                 (start, "in_progress", 2),
                                 (complete, "completed", 3)]:
        action(nginx, p, rid)
        rank, doc = cached(rid)
        assert (rank, doc["status"]) == (want, status)
        assert get(nginx, rid, c).json()["status"] == status

    # cancelled and expired rank after every state they are reached from
    other = new_request(nginx, c, cat)["id"]
    cancel(nginx, c, other)
    assert cached(other)[0] == 4
    assert cached(other)[1]["cancelled_by"] == "client"


def test_a_miss_reads_mongodb_and_fills_the_cache(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    other = provider(nginx, cat, -23.56, -46.64)
    stranger = provider(nginx, new_category(nginx), -23.55, -46.63)
    c = client(nginx)
    rid = new_request(nginx, c, cat)["id"]

    for fill in ("mongodb", "redis"):
        if fill == "mongodb":
            rdb().delete(f"feira:request:{rid}")

        # the client sees whom it was offered to, an offered provider not
        mine = get(nginx, rid, c)
        assert mine.status == 200
        assert sorted(mine.json()["offered_to"]) == sorted(
            [p["id"], other["id"]])
        theirs = get(nginx, rid, p)
        assert theirs.status == 200
        assert "offered_to" not in theirs.json()
        assert theirs.json()["status"] == "open"
        # a provider it was not offered to: 404, as if it did not exist
        r = get(nginx, rid, stranger)
        assert r.status == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert cached(rid)[1]["status"] == "open"

    accept(nginx, p, rid)
    rdb().delete(f"feira:request:{rid}")
    # the other offered provider may no longer read it, from either side
    assert get(nginx, rid, other).status == 404
    assert cached(rid)[0] == 1
    assert get(nginx, rid, other).status == 404
    assert get(nginx, rid, p).json()["provider_id"] == p["id"]

    # matches take the request from the cache as well: only its client
    assert nginx.get(f"/v1/requests/{rid}/matches",
                     token=c["token"]).status == 200
    assert nginx.get(f"/v1/requests/{rid}/matches",
                     token=p["token"]).status == 403


def test_a_slow_read_never_puts_back_an_older_state(nginx):
    """Readers keep emptying and refilling the key while the request moves
    through its lifecycle: whatever order their MongoDB answers and their
    fills come in, the cache ends with the request's last state."""
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)
    rids = [new_request(nginx, c, cat)["id"] for _ in range(8)]
    stop = threading.Event()
    seen = []

    def churn():
        r = rdb()
        while not stop.is_set():
            for rid in rids:
                r.delete(f"feira:request:{rid}")
                seen.append(request(nginx.port, "GET", f"/v1/requests/{rid}",
                                    headers={"Authorization":
                                             f"Bearer {c['token']}"}).status)

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for rid in rids:
            accept(nginx, p, rid)
            start(nginx, p, rid)
            complete(nginx, p, rid)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert seen and set(seen) == {200}
    for rid in rids:
        got = cached(rid)
        if got is not None:
            assert got[0] == 3 and got[1]["status"] == "completed"
        assert get(nginx, rid, c).json()["status"] == "completed"


def test_cached_requests_are_read_while_mongodb_is_away(nginx):
    cat = new_category(nginx)
    provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)
    rid = new_request(nginx, c, cat)["id"]
    gone = new_request(nginx, c, cat)["id"]
    rdb().delete(f"feira:request:{gone}")

    service("stop", "mongo")
    try:
        r = get(nginx, rid, c)
        assert r.status == 200 and r.json()["id"] == rid
        r = get(nginx, gone, c)
        assert r.status == 503
        assert r.headers["content-type"] == "application/problem+json"
    finally:
        service("start", "mongo")

    wait_for(lambda: get(nginx, gone, c).status == 200, timeout=60,
             what="the uncached request readable again")


def test_no_cache_when_switched_off(nginx_factory):
    n = nginx_factory(directives={"feira_services_request_cache": "0"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    p = provider(n, cat, -23.55, -46.63)
    c = client(n)
    rid = new_request(n, c, cat)["id"]
    accept(n, p, rid)
    assert get(n, rid, c).json()["status"] == "accepted"
    assert cached(rid) is None
    # MongoDB is the record the answers come from
    assert db().requests.count_documents({"_id": ObjectId(rid),
                                          "status": "accepted"}) == 1
