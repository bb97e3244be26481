"""feira_services, matching: providers seeded at known distances, ratings
and prices are ranked by the score of docs/matching.md; those outside their
radius, offline, silent, of another category or not available at the
scheduled time are left out; the best ones are offered a new request."""

import datetime
import time

import pytest

from feira import wait_for
from requestutil import (client, events, haversine, location, move,
                         new_category, new_request, offer_counts, provider,
                         put, score)

HOME = (-23.5505, -46.6333)
BUDGET = 10000


def seed(n):
    """The providers of one category around HOME, and who should match."""
    cat = new_category(n, prefix="match")
    other = new_category(n, prefix="other")
    spec = {
        # name: (north km, east km, rating, amount, radius, extra)
        "near_good": (1.0, 0.0, 4.8, 9000, 10, {}),
        "mid_fair": (0.0, 3.0, 3.0, 9000, 10, {}),
        "nearest_dear_new": (-0.5, 0.0, None, 19000, 10, {}),
        "far_cheap_best": (0.0, -5.0, 5.0, 5000, 10, {}),
        "far_wide_radius": (-12.0, 0.0, 5.0, 5000, 15, {}),
        "other_currency": (2.0, 2.0, 4.0, 100, 10,
                           {"currency": "USD", "pricing": "hourly"}),
        "sundays_only": (1.5, 0.0, 4.0, 8000, 10,
                         {"availability": [{"day": 0, "start": "00:00",
                                            "end": "01:00"}]}),
    }
    left_out = {
        "outside_radius": (12.0, 0.0, 5.0, 5000, 10, {}),
        "offline": (0.2, 0.0, 5.0, 5000, 10, {"online": False}),
        "other_category": (0.3, 0.0, 5.0, 5000, 10, {"category": other}),
    }
    people = {}
    for name, (north, east, rating, amount, radius, extra) in \
            list(spec.items()) + list(left_out.items()):
        lat, lng = move(*HOME, north_km=north, east_km=east)
        extra = dict(extra)
        online = extra.pop("online", True)
        category = extra.pop("category", cat)
        # an offline provider's position is known: it just does not work
        p = provider(n, category, lat, lng, online=online, rating=rating,
                     amount=amount, radius=radius, **extra)
        p.update(name=name, lat=lat, lng=lng, rating=rating or 0.0,
                 amount=amount, currency=extra.get("currency", "BRL"))
        people[name] = p
    return cat, people, set(spec), set(left_out)


def expected_order(people, names, budget=BUDGET, counters=True):
    ranked = []
    for name in names:
        p = people[name]
        d = haversine(*HOME, p["lat"], p["lng"])
        received, accepted = offer_counts(p["id"]) if counters else (0, 0)
        b = budget if p["currency"] == "BRL" else None
        ranked.append((-score(d, p["rating"], p["amount"], b, received,
                              accepted), d, name))
    ranked.sort()
    return [(name, -s, d) for s, d, name in ranked]


def test_matches_are_ranked_by_the_documented_score(nginx):
    cat, people, matching, left_out = seed(nginx)
    c = client(nginx)

    # who is offered the request: the five best, before any offer counted
    at_creation = expected_order(people, matching, counters=False)
    created = new_request(nginx, c, cat, *HOME,
                          budget={"amount": BUDGET, "currency": "BRL"})
    rid = created["id"]
    assert created["offered_to"] == [people[name]["id"]
                                     for name, _, _ in at_creation[:5]]
    offered = [e for e in events(rid, 2) if e["type"] == "request.offered"]
    assert len(offered) == 1
    assert offered[0]["data"]["provider_ids"] == created["offered_to"]

    r = nginx.get(f"/v1/requests/{rid}/matches", token=c["token"])
    assert r.status == 200, r.body
    items = r.json()["items"]
    by_id = {p["id"]: name for name, p in people.items()}
    got = [by_id[x["provider_id"]] for x in items]

    # nobody outside their radius, offline or of another category
    assert not set(got) & left_out
    assert set(got) == matching

    # the order and the figures of the formula, offers counted since
    want = expected_order(people, matching)
    assert got == [name for name, _, _ in want]
    for item, (name, s, d) in zip(items, want):
        p = people[name]
        assert item["distance_km"] == pytest.approx(d, abs=0.005)
        assert item["score"] == pytest.approx(s, abs=0.0005)
        assert item["rating_avg"] == pytest.approx(p["rating"])
        assert item["offering_id"] == p["offering"]["id"]
        assert item["price"] == {"amount": p["amount"],
                                 "currency": p["currency"]}
        parts = item["score_parts"]
        assert item["score"] == pytest.approx(
            0.4 * parts["distance"] + 0.3 * parts["rating"]
            + 0.2 * parts["price"] + 0.1 * parts["acceptance"], abs=0.0005)

    r = nginx.get(f"/v1/requests/{rid}/matches?limit=2", token=c["token"])
    assert [x["provider_id"] for x in r.json()["items"]] == \
        [x["provider_id"] for x in items[:2]]

    # going offline takes a provider out at once
    best = people[got[0]]
    assert put(nginx, "/v1/providers/me/status", {"online": False},
               best["token"]).status == 200
    r = nginx.get(f"/v1/requests/{rid}/matches", token=c["token"])
    assert best["id"] not in [x["provider_id"] for x in r.json()["items"]]


def test_the_schedule_must_be_covered(nginx):
    cat, people, matching, _ = seed(nginx)
    c = client(nginx)

    # next Tuesday 10:00 UTC: "sundays_only" cannot come
    today = datetime.datetime.utcnow().date()
    tuesday = today + datetime.timedelta(days=(1 - today.weekday()) % 7 or 7)
    when = f"{tuesday.isoformat()}T10:00:00Z"
    rid = new_request(nginx, c, cat, *HOME, scheduled_at=when)["id"]
    r = nginx.get(f"/v1/requests/{rid}/matches", token=c["token"])
    got = {x["provider_id"] for x in r.json()["items"]}
    assert people["sundays_only"]["id"] not in got
    assert got == {people[n]["id"] for n in matching - {"sundays_only"}}

    # next Sunday 00:30 UTC: it can
    sunday = today + datetime.timedelta(days=(6 - today.weekday()) % 7 or 7)
    rid = new_request(nginx, c, cat, *HOME,
                      scheduled_at=f"{sunday.isoformat()}T00:30:00Z")["id"]
    r = nginx.get(f"/v1/requests/{rid}/matches", token=c["token"])
    assert people["sundays_only"]["id"] in {x["provider_id"]
                                            for x in r.json()["items"]}


def test_a_silent_provider_drops_out(nginx_factory):
    n = nginx_factory(directives={"feira_services_presence_ttl": "2s",
                                  "feira_services_sweep_interval": "500ms"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    lat, lng = move(*HOME, north_km=1)
    p = provider(n, cat, lat, lng)
    c = client(n)
    rid = new_request(n, c, cat, *HOME)["id"]

    def matched():
        r = n.get(f"/v1/requests/{rid}/matches", token=c["token"])
        return [x["provider_id"] for x in r.json()["items"]]

    assert matched() == [p["id"]]
    wait_for(lambda: matched() == [], timeout=10,
             what="the silent provider left matching")
    status = n.get("/v1/providers/me/status", token=p["token"]).json()
    assert status["online"] is False

    # a new position (feira_realtime's handler) brings it back
    location(n, p, lat, lng, wait=True)
    assert matched() == [p["id"]]


def test_a_new_rating_counts_after_the_rating_ttl(nginx_factory):
    from requestutil import db
    from bson import ObjectId
    n = nginx_factory(directives={"feira_services_rating_ttl": "1s"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    a = provider(n, cat, *move(*HOME, north_km=1), rating=2.0)
    b = provider(n, cat, *move(*HOME, north_km=1.2), rating=4.0)
    c = client(n)
    rid = new_request(n, c, cat, *HOME)["id"]

    def ranked():
        r = n.get(f"/v1/requests/{rid}/matches", token=c["token"])
        return [(x["provider_id"], x["rating_avg"]) for x in r.json()["items"]]

    assert ranked() == [(b["id"], 4.0), (a["id"], 2.0)]
    db().users.update_one({"_id": ObjectId(a["id"])},
                          {"$set": {"rating_avg": 5.0}})
    wait_for(lambda: ranked() == [(a["id"], 5.0), (b["id"], 4.0)],
             timeout=10, what="the new rating in the ranking")
