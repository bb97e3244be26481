"""feira_services, service requests: the whole lifecycle against the real
stack, its events read back from Kafka, each actor's rights, expiry, and
every bad input of issue 5 answered with problem+json and no change."""

import datetime
import json
import time

import pytest
from bson import ObjectId

from feira import request, wait_for
from requestutil import (admin_token, claims, client, db, events, new_category,
                         new_request, provider)


def state(rid):
    """What a rejected call must leave as it was."""
    doc = db().requests.find_one({"_id": ObjectId(rid)})
    return doc, len(claims(rid))


def assert_problem(r, status):
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert "Mongo" not in r.body.decode() and "$" not in body["detail"]
    return body


def test_the_whole_lifecycle_and_its_events(nginx):
    cat = new_category(nginx)
    lat, lng = -23.5505, -46.6333
    p = provider(nginx, cat, lat + 0.01, lng, amount=12000)
    c = client(nginx)

    created = new_request(nginx, c, cat, lat, lng,
                          budget={"amount": 15000, "currency": "BRL"})
    rid = created["id"]
    assert created["status"] == "open"
    assert created["client_id"] == c["id"]
    assert created["offered_to"] == [p["id"]]
    assert created["expires_at"] > created["created_at"]
    assert "provider_id" not in created

    r = nginx.get(f"/v1/requests/{rid}", token=c["token"])
    assert r.status == 200 and r.json()["status"] == "open"

    steps = [("accept", "accepted"), ("start", "in_progress"),
             ("complete", "completed")]
    for action, status in steps:
        r = nginx.post(f"/v1/requests/{rid}/{action}", token=p["token"])
        assert r.status == 200, r.body
        body = r.json()
        assert body["status"] == status
        assert body["started_at" if status == "in_progress"
                    else f"{status}_at"]

    done = nginx.get(f"/v1/requests/{rid}", token=c["token"]).json()
    assert done["status"] == "completed"
    assert done["provider_id"] == p["id"]
    assert done["offering_id"] == p["offering"]["id"]
    assert done["price"] == {"amount": 12000, "currency": "BRL"}

    # the assigned provider reads it too, without the other offers
    mine = nginx.get(f"/v1/requests/{rid}", token=p["token"])
    assert mine.status == 200 and "offered_to" not in mine.json()

    # one event per transition, in order, each with its own id
    evs = events(rid, 5)
    assert [e["type"] for e in evs] == [
        "request.created", "request.offered", "request.accepted",
        "request.started", "request.completed"]
    assert len({e["id"] for e in evs}) == 5
    assert all(len(e["id"]) == 24 for e in evs)
    assert evs[1]["data"]["provider_ids"] == [p["id"]]
    for e, (action, status) in zip(evs[2:], steps):
        assert e["data"]["request_id"] == rid
        assert e["data"]["to"] == status
        assert e["data"]["provider_id"] == p["id"]
        assert e["data"]["price"] == {"amount": 12000, "currency": "BRL"}
        assert e["actor"] == {"id": p["id"], "role": "provider"}
    assert [e["data"]["from"] for e in evs[2:]] == [
        "open", "accepted", "in_progress"]

    # the claims recorded each transition once, all published
    recorded = claims(rid)
    assert sorted(x["_id"] for x in recorded) == sorted(
        f"{rid}:{s}" for s in ("new", "open", "accepted", "in_progress"))
    wait_for(lambda: all(x["published"] for x in claims(rid)),
             what="claims marked published")


def test_cancel_by_client_and_by_the_assigned_provider(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)

    # the client cancels an open request; nobody accepts it afterwards
    rid = new_request(nginx, c, cat)["id"]
    r = nginx.post(f"/v1/requests/{rid}/cancel", token=c["token"])
    assert r.status == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancelled_by"] == "client"
    body = assert_problem(nginx.post(f"/v1/requests/{rid}/accept",
                                     token=p["token"]), 409)
    assert body["current_status"] == "cancelled"
    assert "cancelled" in json.dumps(body)

    # the assigned provider cancels an accepted one
    rid = new_request(nginx, c, cat)["id"]
    assert nginx.post(f"/v1/requests/{rid}/accept",
                      token=p["token"]).status == 200
    r = nginx.post(f"/v1/requests/{rid}/cancel", token=p["token"])
    assert r.status == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancelled_by"] == "provider" and r.json()["cancelled_at"]
    assert [e["type"] for e in events(rid, 4)][-1] == "request.cancelled"

    # in progress: still cancellable; completed: no more
    rid = new_request(nginx, c, cat)["id"]
    for action in ("accept", "start"):
        assert nginx.post(f"/v1/requests/{rid}/{action}",
                          token=p["token"]).status == 200
    assert nginx.post(f"/v1/requests/{rid}/cancel",
                      token=c["token"]).status == 200

    rid = new_request(nginx, c, cat)["id"]
    for action in ("accept", "start", "complete"):
        assert nginx.post(f"/v1/requests/{rid}/{action}",
                          token=p["token"]).status == 200
    before = state(rid)
    body = assert_problem(nginx.post(f"/v1/requests/{rid}/cancel",
                                     token=c["token"]), 409)
    assert body["current_status"] == "completed"
    assert state(rid) == before


def test_illegal_transitions_are_409_with_the_status(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)
    rid = new_request(nginx, c, cat)["id"]

    for action in ("start", "complete"):
        before = state(rid)
        body = assert_problem(nginx.post(f"/v1/requests/{rid}/{action}",
                                         token=p["token"]), 403)
        assert state(rid) == before

    assert nginx.post(f"/v1/requests/{rid}/accept",
                      token=p["token"]).status == 200

    before = state(rid)
    body = assert_problem(nginx.post(f"/v1/requests/{rid}/complete",
                                     token=p["token"]), 409)
    assert body["current_status"] == "accepted"
    body = assert_problem(nginx.post(f"/v1/requests/{rid}/accept",
                                     token=p["token"]), 409)
    assert body["current_status"] == "accepted"
    assert state(rid) == before

    # an action outside the table is no endpoint at all
    assert_problem(nginx.post(f"/v1/requests/{rid}/expire",
                              token=p["token"]), 404)
    assert_problem(nginx.post(f"/v1/requests/{rid}/fly", token=p["token"]),
                   404)
    r = nginx.get(f"/v1/requests/{rid}/accept", token=p["token"])
    assert_problem(r, 405)
    assert r.headers["allow"] == "POST"


def test_who_may_do_what(nginx):
    cat = new_category(nginx)
    other_cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    rival = provider(nginx, cat, -23.55, -46.64)
    stranger = provider(nginx, other_cat, -23.55, -46.63)
    c = client(nginx)
    other = client(nginx)
    rid = new_request(nginx, c, cat)["id"]
    offered = db().requests.find_one({"_id": ObjectId(rid)})["offered_to"]
    assert {str(x) for x in offered} == {p["id"], rival["id"]}

    before = state(rid)

    # a client accepting its own request
    assert_problem(nginx.post(f"/v1/requests/{rid}/accept",
                              token=c["token"]), 403)
    # another client: the request does not exist for it
    assert_problem(nginx.get(f"/v1/requests/{rid}", token=other["token"]),
                   404)
    assert_problem(nginx.post(f"/v1/requests/{rid}/cancel",
                              token=other["token"]), 404)
    assert_problem(nginx.get(f"/v1/requests/{rid}/matches",
                             token=other["token"]), 404)
    # a provider without an offering in the category
    assert_problem(nginx.post(f"/v1/requests/{rid}/accept",
                              token=stranger["token"]), 403)
    assert_problem(nginx.get(f"/v1/requests/{rid}", token=stranger["token"]),
                   404)
    # a provider cancels only what it was assigned
    assert_problem(nginx.post(f"/v1/requests/{rid}/cancel",
                              token=p["token"]), 403)
    # only the client sees the matches
    assert_problem(nginx.get(f"/v1/requests/{rid}/matches",
                             token=p["token"]), 403)
    # no token at all
    r = nginx.post(f"/v1/requests/{rid}/accept")
    assert r.status == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert state(rid) == before

    # an offered provider reads it while it is open, without the others
    r = nginx.get(f"/v1/requests/{rid}", token=rival["token"])
    assert r.status == 200 and "offered_to" not in r.json()

    assert nginx.post(f"/v1/requests/{rid}/accept",
                      token=p["token"]).status == 200
    before = state(rid)

    # a provider starting a request assigned to another
    assert_problem(nginx.post(f"/v1/requests/{rid}/start",
                              token=rival["token"]), 403)
    assert_problem(nginx.post(f"/v1/requests/{rid}/cancel",
                              token=rival["token"]), 403)
    # and it no longer sees it
    assert_problem(nginx.get(f"/v1/requests/{rid}", token=rival["token"]),
                   404)
    assert state(rid) == before

    # admins read everything
    admin = admin_token(nginx)
    r = nginx.get(f"/v1/requests/{rid}", token=admin)
    assert r.status == 200 and "offered_to" in r.json()

    # providers do not create requests; unknown ids are 404
    assert_problem(nginx.post("/v1/requests", {
        "category": cat, "description": "x",
        "location": {"lat": 0, "lng": 0}}, token=p["token"]), 403)
    assert_problem(nginx.get(f"/v1/requests/{ObjectId()}", token=c["token"]),
                   404)
    assert_problem(nginx.get("/v1/requests/not-an-id", token=c["token"]),
                   404)


BAD_REQUESTS = [
    ({"location": {"lat": 91, "lng": 0}}, "location.lat"),
    ({"location": {"lat": -90.5, "lng": 0}}, "location.lat"),
    ({"location": {"lat": 0, "lng": 180.01}}, "location.lng"),
    ({"location": {"lat": 0, "lng": -181}}, "location.lng"),
    ({"location": {"lat": "12.5", "lng": 0}}, "location.lat"),
    ({"location": {"lat": None, "lng": 0}}, "location.lat"),
    ({"location": {"lat": True, "lng": 0}}, "location.lat"),
    ({"location": {"lat": {"$gt": 0}, "lng": 0}}, "location"),
    ({"location": {"lng": 0}}, "location.lat"),
    ({"location": "here"}, "location"),
    ({"location": {"lat": 0, "lng": 0, "$where": "1"}}, "location"),
    ({"location": {"lat": 0, "lng": 0, "floor": 2}}, "location.floor"),
    ({"budget": {"amount": -1, "currency": "BRL"}}, "budget.amount"),
    ({"budget": {"amount": 10.5, "currency": "BRL"}}, "budget.amount"),
    ({"budget": {"amount": "100", "currency": "BRL"}}, "budget.amount"),
    ({"budget": {"amount": 100, "currency": "brl"}}, "budget.currency"),
    ({"budget": {"amount": 100}}, "budget.currency"),
    ({"category": "no-such-category"}, "category"),
    ({"category": "Bad Slug"}, "category"),
    ({"category": {"$ne": None}}, "category"),
    ({"scheduled_at": "tomorrow"}, "scheduled_at"),
    ({"scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at"),
    ({"description": ""}, "description"),
    ({"description": "x" * 2001}, "description"),
    ({"status": "accepted"}, "status"),
    ({"client_id": str(ObjectId())}, "client_id"),
]


@pytest.mark.parametrize("change, field", BAD_REQUESTS)
def test_bad_request_is_400_and_creates_nothing(nginx, change, field):
    cat = new_category(nginx)
    c = client(nginx)
    body = {"category": cat, "description": "Fix the sink",
            "location": {"lat": -23.55, "lng": -46.63}}
    body.update(change)
    before = db().requests.count_documents({"client_id": ObjectId(c["id"])})
    problem = assert_problem(nginx.post("/v1/requests", body,
                                        token=c["token"]), 400)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert db().requests.count_documents(
        {"client_id": ObjectId(c["id"])}) == before


def test_nan_and_wrong_content_are_rejected(nginx):
    cat = new_category(nginx)
    c = client(nginx)
    text = ('{"category": "%s", "description": "x", '
            '"location": {"lat": NaN, "lng": 0}}' % cat)
    r = request(nginx.port, "POST", "/v1/requests", text,
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {c['token']}"})
    assert_problem(r, 400)
    r = request(nginx.port, "POST", "/v1/requests", "x=1",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Authorization": f"Bearer {c['token']}"})
    assert_problem(r, 415)
    assert db().requests.count_documents(
        {"client_id": ObjectId(c["id"])}) == 0


def test_open_requests_expire(nginx_factory):
    n = nginx_factory(directives={"feira_services_request_ttl": "3s",
                                  "feira_services_sweep_interval": "300ms"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    p = provider(n, cat, -23.55, -46.63)
    c = client(n)
    rid = new_request(n, c, cat)["id"]
    kept = new_request(n, c, cat)["id"]
    assert n.post(f"/v1/requests/{kept}/accept",
                  token=p["token"]).status == 200

    wait_for(lambda: n.get(f"/v1/requests/{rid}", token=c["token"])
             .json()["status"] == "expired", timeout=15,
             what="the open request expired")

    body = n.get(f"/v1/requests/{rid}", token=c["token"]).json()
    assert body["expired_at"]
    problem = assert_problem(n.post(f"/v1/requests/{rid}/accept",
                                    token=p["token"]), 409)
    assert problem["current_status"] == "expired"

    evs = events(rid, 3)
    assert [e["type"] for e in evs] == [
        "request.created", "request.offered", "request.expired"]
    assert evs[-1]["actor"] == {"id": None, "role": "system"}
    assert evs[-1]["data"]["from"] == "open"

    # an accepted request does not expire
    time.sleep(1)
    assert n.get(f"/v1/requests/{kept}",
                 token=c["token"]).json()["status"] == "accepted"


def test_the_callers_own_requests_with_pagination(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.55, -46.63)
    c = client(nginx)
    ids = [new_request(nginx, c, cat)["id"] for _ in range(3)]
    assert nginx.post(f"/v1/requests/{ids[0]}/accept",
                      token=p["token"]).status == 200

    r = nginx.get("/v1/requests?limit=2", token=c["token"])
    assert r.status == 200
    page = r.json()
    assert [x["id"] for x in page["items"]] == [ids[2], ids[1]]
    assert page["next_cursor"] == ids[1]
    r = nginx.get(f"/v1/requests?limit=2&cursor={page['next_cursor']}",
                  token=c["token"])
    assert [x["id"] for x in r.json()["items"]] == [ids[0]]
    assert r.json()["next_cursor"] is None

    r = nginx.get("/v1/requests?status=open", token=c["token"])
    assert [x["id"] for x in r.json()["items"]] == [ids[2], ids[1]]

    r = nginx.get("/v1/requests", token=p["token"])
    assert [x["id"] for x in r.json()["items"]] == [ids[0]]
    assert "offered_to" not in r.json()["items"][0]

    for q in ("limit=0", "limit=101", "status=nope", "role=admin",
              "cursor=zzz"):
        assert_problem(nginx.get(f"/v1/requests?{q}", token=c["token"]),
                       400)


def test_scheduled_request_keeps_its_time(nginx):
    cat = new_category(nginx)
    c = client(nginx)
    when = (datetime.datetime.utcnow() + datetime.timedelta(days=2)).replace(
        microsecond=0)
    offset = when - datetime.timedelta(hours=3)
    created = new_request(nginx, c, cat, scheduled_at=offset.strftime(
        "%Y-%m-%dT%H:%M:%S-03:00"), location={"lat": 1.5, "lng": 2.5,
                                              "address": "Rua A, 1"})
    assert created["scheduled_at"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert created["location"] == {"lat": 1.5, "lng": 2.5,
                                   "address": "Rua A, 1"}


@pytest.mark.parametrize("path", [
    "/v1/requests?status=%7B%22%24ne%22%3Anull%7D",
    "/v1/requests?role=admin",
    "/v1/requests?role=%24ne",
    "/v1/requests?limit=0",
    "/v1/requests?limit=101",
    "/v1/requests?cursor=%7B%7D",
    "/v1/offerings?provider=%7B%22%24ne%22%3Anull%7D",
    "/v1/offerings?category=%7B%22%24gt%22%3A%22%22%7D",
])
def test_operator_injection_in_queries_is_400(nginx, path):
    c = client(nginx)
    r = nginx.get(path, token=c["token"])
    body = assert_problem(r, 400)
    assert body["errors"], body


def test_unknown_or_hostile_request_ids_are_404(nginx):
    c = client(nginx)
    # a PHP-style operator name is just an unknown argument: no filter, and
    # still only the caller's own requests
    r = nginx.get("/v1/requests?status[$ne]=x&client_id[$ne]=y",
                  token=c["token"])
    assert r.status == 200 and r.json()["items"] == []
    for rid in ("%7B%22%24ne%22%3Anull%7D", "0" * 24, "zz", "a" * 200):
        assert_problem(nginx.get(f"/v1/requests/{rid}", token=c["token"]),
                       404)
        assert_problem(nginx.post(f"/v1/requests/{rid}/accept",
                                  token=c["token"]), 404)
