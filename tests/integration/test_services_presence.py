"""feira_services, provider presence: online and offline, the live
position, and bad positions rejected without a change."""

import json

import pytest

from authutil import register
from feira import request
from svcutil import new_category, offering, provider, put, rdb


def test_online_position_offline(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, online=False)
    token = p["token"]

    r = nginx.get("/v1/providers/me/status", token=token)
    assert r.status == 200
    assert r.json()["online"] is False and r.json()["matchable"] is False
    assert r.json()["categories"] == [cat]

    r = put(nginx, "/v1/providers/me/status", {"online": True}, token)
    assert r.status == 200
    assert r.json()["online"] is True
    assert r.json()["matchable"] is False     # no position yet
    assert p["id"] not in rdb().zrange(f"feira:geo:{cat}", 0, -1)

    r = put(nginx, "/v1/providers/me/location",
            {"lat": -23.5505, "lng": -46.6333}, token)
    assert r.status == 200
    body = r.json()
    assert body["matchable"] is True
    assert body["location"] == pytest.approx({"lat": -23.5505,
                                              "lng": -46.6333})
    assert body["location_at"] and body["last_seen_at"]
    lng, lat = rdb().geopos(f"feira:geo:{cat}", p["id"])[0]
    assert lat == pytest.approx(-23.5505, abs=1e-5)
    assert lng == pytest.approx(-46.6333, abs=1e-5)

    r = put(nginx, "/v1/providers/me/status", {"online": False}, token)
    assert r.status == 200 and r.json()["matchable"] is False
    assert p["id"] not in rdb().zrange(f"feira:geo:{cat}", 0, -1)
    assert rdb().zscore("feira:seen", p["id"]) is None

    # a new offering of an online provider is matchable at once
    assert put(nginx, "/v1/providers/me/status", {"online": True},
               token).json()["matchable"] is True
    cat2 = new_category(nginx)
    assert nginx.post("/v1/offerings", offering(cat2),
                      token=token).status == 201
    assert p["id"] in rdb().zrange(f"feira:geo:{cat2}", 0, -1)
    assert sorted(nginx.get("/v1/providers/me/status", token=token)
                  .json()["categories"]) == sorted([cat, cat2])


def test_presence_is_for_providers(nginx):
    c = register(nginx, role="client")["access_token"]
    r = put(nginx, "/v1/providers/me/location", {"lat": 0, "lng": 0}, c)
    assert r.status == 403
    r = request(nginx.port, "PUT", "/v1/providers/me/location",
                {"lat": 0, "lng": 0})
    assert r.status == 401
    p = provider(nginx, online=False)
    assert nginx.get("/v1/providers/me/elsewhere",
                     token=p["token"]).status == 404
    assert nginx.get("/v1/providers/me/location",
                     token=p["token"]).status == 405
    r = put(nginx, "/v1/providers/me/status", {"online": "yes"}, p["token"])
    assert r.status == 400
    assert r.json()["errors"][0]["field"] == "online"


@pytest.mark.parametrize("body, field", [
    ({"lat": 90.0001, "lng": 0}, "lat"),
    ({"lat": -91, "lng": 0}, "lat"),
    ({"lat": 0, "lng": 180.5}, "lng"),
    ({"lat": 0, "lng": -181}, "lng"),
    ({"lat": "10", "lng": 0}, "lat"),
    ({"lat": None, "lng": 0}, "lat"),
    ({"lat": [1], "lng": 0}, "lat"),
    ({"lng": 0}, "lat"),
    ({"lat": 0, "lng": {"$gt": 0}}, "lng"),
    ({"lat": 0, "lng": 0, "speed": 3}, "speed"),
])
def test_bad_position_is_400_and_changes_nothing(nginx, body, field):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.5, -46.6)
    before = rdb().hgetall(f"feira:provider:{p['id']}")
    r = put(nginx, "/v1/providers/me/location", body, p["token"])
    assert r.status == 400, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert rdb().hgetall(f"feira:provider:{p['id']}") == before


def test_nan_position_is_400(nginx):
    p = provider(nginx, online=False)
    r = request(nginx.port, "PUT", "/v1/providers/me/location",
                '{"lat": NaN, "lng": 0}',
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {p['token']}"})
    assert r.status == 400
    assert rdb().hget(f"feira:provider:{p['id']}", "lat") is None
