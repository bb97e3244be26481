"""feira_services, provider presence: PUT /v1/providers/me/status over the
common presence keys of docs/events.md (feira:seen, written by
feira_realtime's PUT /v1/providers/me/location, and feira:offline), and
the offering mirror matching reads."""

import time

from authutil import register
from feira import request, wait_for
from requestutil import (client, create_request, go_online, location,
                         new_category, offering, provider, put, rdb)


def test_online_offline(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, online=False)
    token = p["token"]

    r = nginx.get("/v1/providers/me/status", token=token)
    assert r.status == 200
    assert r.json() == {"online": False}

    # the position comes from realtime's handler: a sign of life
    location(nginx, p, -23.5505, -46.6333)
    assert p["id"] in rdb().zrange(f"feira:geo:{cat}", 0, -1)
    seen = rdb().zscore("feira:seen", p["id"])
    assert seen and abs(seen - time.time() * 1000) < 10000
    r = nginx.get("/v1/providers/me/status", token=token)
    assert r.json()["online"] is True and r.json()["last_seen_at"]

    r = put(nginx, "/v1/providers/me/status", {"online": False}, token)
    assert r.status == 200 and r.json() == {"online": False}
    assert rdb().zscore("feira:seen", p["id"]) is None
    assert rdb().sismember("feira:offline", p["id"])

    # switched off: a sign of life (an open WebSocket) does not bring it
    # back into matching
    location(nginx, p, -23.5505, -46.6333, wait=True)
    assert nginx.get("/v1/providers/me/status",
                     token=token).json()["online"] is False

    r = put(nginx, "/v1/providers/me/status", {"online": True}, token)
    assert r.status == 200 and r.json()["online"] is True
    assert not rdb().sismember("feira:offline", p["id"])
    assert rdb().zscore("feira:seen", p["id"]) is not None
    # the offering mirror is rebuilt on going online
    assert rdb().hget(f"feira:offer:{cat}", p["id"])


def test_silent_provider_leaves_matching(nginx_factory):
    n = nginx_factory(directives={"feira_services_presence_ttl": "2s"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    cat = new_category(n)
    p = provider(n, cat, -23.55, -46.63)
    c = client(n)
    rq = create_request(n, c, cat)
    r = n.get(f"/v1/requests/{rq['id']}/matches", token=c["token"])
    assert [m["provider_id"] for m in r.json()["items"]] == [p["id"]]
    assert n.get("/v1/providers/me/status",
                 token=p["token"]).json()["online"] is True
    time.sleep(2.5)
    assert n.get("/v1/providers/me/status",
                 token=p["token"]).json()["online"] is False
    r = n.get(f"/v1/requests/{rq['id']}/matches", token=c["token"])
    assert r.json()["items"] == []
    go_online(n, p)
    r = n.get(f"/v1/requests/{rq['id']}/matches", token=c["token"])
    assert [m["provider_id"] for m in r.json()["items"]] == [p["id"]]


def test_offering_changes_reach_the_mirror(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.5, -46.6)
    assert rdb().hget(f"feira:offer:{cat}", p["id"]).startswith(
        p["offering"]["id"])
    r = request(nginx.port, "DELETE",
                f"/v1/offerings/{p['offering']['id']}",
                headers={"Authorization": f"Bearer {p['token']}"})
    assert r.status == 204
    assert rdb().hget(f"feira:offer:{cat}", p["id"]) is None


def test_presence_is_for_providers(nginx):
    c = register(nginx, role="client")["access_token"]
    r = put(nginx, "/v1/providers/me/status", {"online": True}, c)
    assert r.status == 403
    r = request(nginx.port, "PUT", "/v1/providers/me/status",
                {"online": True})
    assert r.status == 401
    p = provider(nginx, online=False)
    assert request(nginx.port, "DELETE", "/v1/providers/me/status",
                   headers={"Authorization": f"Bearer {p['token']}"}
                   ).status == 405


def test_bad_status_is_400_and_changes_nothing(nginx):
    p = provider(nginx, online=False)
    for body, field in [({"online": "yes"}, "online"),
                        ({"online": 1}, "online"),
                        ({}, "online"),
                        ({"online": {"$ne": None}}, "online"),
                        ({"online": True, "where": 1}, "where")]:
        r = put(nginx, "/v1/providers/me/status", body, p["token"])
        assert r.status == 400, r.body
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]]
    assert rdb().zscore("feira:seen", p["id"]) is None
    assert not rdb().sismember("feira:offline", p["id"])
