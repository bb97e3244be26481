"""feira_services: a transition committed by its claim but never applied
(MongoDB failed in between) is applied by the sweep; events the broker did
not take are published later, with the same event id."""

import datetime
import json

from bson import ObjectId

from feira import service, wait_for
from requestutil import (claims, client, db, events, new_category,
                         new_request, provider)

FAST = {"feira_services_sweep_interval": "300ms",
        "feira_services_relay_after": "1s"}
BROKER = "feira_kafka_timeout 2s;\n"


def test_a_committed_transition_is_applied_and_published(nginx_factory):
    n = nginx_factory(directives=FAST, conf=BROKER)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    c = client(n)
    rid = new_request(n, c, cat)["id"]
    wait_for(lambda: all(x["published"] for x in claims(rid)),
             what="the creation published")

    # what a job leaves when MongoDB dies between the claim and the update
    now = datetime.datetime.utcnow() - datetime.timedelta(seconds=60)
    event_id = str(ObjectId())
    event = {"id": event_id, "type": "request.cancelled",
             "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "actor": {"id": c["id"], "role": "client"},
             "data": {"request_id": rid, "client_id": c["id"],
                      "category": cat, "from": "open", "to": "cancelled"}}
    db().request_transitions.insert_one({
        "_id": f"{rid}:open", "request_id": ObjectId(rid), "from": "open",
        "to": "cancelled", "action": "cancel",
        "actor": {"id": c["id"], "role": "client"}, "at": now,
        "set": {"status": "cancelled", "cancelled_at": now,
                "updated_at": now},
        "events": [json.dumps(event)], "published": False})

    wait_for(lambda: n.get(f"/v1/requests/{rid}", token=c["token"])
             .json()["status"] == "cancelled", timeout=15,
             what="the sweep applied the claim")
    evs = events(rid, 2)
    assert [e["id"] for e in evs if e["type"] == "request.cancelled"] == \
        [event_id]
    wait_for(lambda: db().request_transitions.find_one(
        {"_id": f"{rid}:open"})["published"], what="the claim published")

    # and nobody takes the state it left
    p = provider(n, cat, -23.55, -46.63)
    r = n.post(f"/v1/requests/{rid}/accept", token=p["token"])
    assert r.status == 409 and r.json()["current_status"] == "cancelled"


def test_events_wait_out_a_broker_outage(nginx_factory):
    n = nginx_factory(directives=FAST, conf=BROKER)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    p = provider(n, cat, -23.55, -46.63)
    c = client(n)
    rid = new_request(n, c, cat)["id"]

    service("stop", "kafka")
    try:
        # the change is made; its event waits in the claim
        r = n.post(f"/v1/requests/{rid}/accept", token=p["token"], timeout=30)
        assert r.status == 200, r.body
        claim = db().request_transitions.find_one({"_id": f"{rid}:open"})
        assert claim["published"] is False
        stored = json.loads(claim["events"][0])
    finally:
        service("start", "kafka")

    wait_for(lambda: db().request_transitions.find_one(
        {"_id": f"{rid}:open"})["published"], timeout=90,
        what="the relay published the accept")
    accepted = [e for e in events(rid, 3) if e["type"] == "request.accepted"]
    # delivered at least once, always with the id it was stored with
    assert accepted and {e["id"] for e in accepted} == {stored["id"]}
    assert accepted[0]["data"]["provider_id"] == p["id"]
