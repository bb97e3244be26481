"""API helpers for service requests, for the services tests and any other
test that needs a category, an offering, a request or a transition:
create_category, create_offering, create_request, accept, start,
complete, cancel, go_online (and the longer-standing names below).
Everything goes through the real API (a provider's position through
feira_realtime's PUT /v1/providers/me/location), except what only another
module writes (users.rating_avg, kept by feira_users), set with pymongo."""

import datetime
import json
import math
import os
import time
import uuid

import pymongo
import redis as redislib
from bson import ObjectId
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

from authutil import login_admin, register
from feira import request, stack_env

TOPIC = "feira.requests"
WEEK = [{"day": d, "start": "00:00", "end": "24:00"} for d in range(7)]


def db():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()


def rdb():
    host, port = stack_env()["REDIS_ADDR"].rsplit(":", 1)
    return redislib.Redis(host=host, port=int(port), decode_responses=True)


def admin_token(n):
    return login_admin(n)["access_token"]


def put(n, path, body, token):
    return request(n.port, "PUT", path, body,
                   headers={"Authorization": f"Bearer {token}"})


def patch(n, path, body, token):
    return request(n.port, "PATCH", path, body,
                   headers={"Authorization": f"Bearer {token}"})


def delete(n, path, token):
    return request(n.port, "DELETE", path,
                   headers={"Authorization": f"Bearer {token}"})


def new_category(n, admin=None, prefix="cat"):
    """A category of its own: Redis sets are per category, so tests that
    match never see each other's providers."""
    slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
    r = n.post("/v1/categories", {"slug": slug, "name": slug.title()},
               token=admin or admin_token(n))
    assert r.status == 201, r.body
    return slug


def offering(category, amount=8000, currency="BRL", radius=10.0,
             availability=None, pricing="fixed", title="Service"):
    return {"category": category, "title": title,
            "price": {"amount": amount, "currency": currency},
            "pricing": pricing,
            "availability": WEEK if availability is None else availability,
            "service_radius_km": radius}


def provider(n, category=None, lat=None, lng=None, online=True, rating=None,
             **offer):
    """A registered provider with an offering in the category, its rating
    set as feira_users would, online at (lat, lng)."""
    p = register(n, role="provider")
    token = p["access_token"]
    p["token"] = token
    p["id"] = p["user"]["id"]
    if rating is not None:
        db().users.update_one({"_id": ObjectId(p["id"])},
                              {"$set": {"rating_avg": rating,
                                        "rating_count": 3}})
    if category:
        r = n.post("/v1/offerings", offering(category, **offer), token=token)
        assert r.status == 201, r.body
        p["offering"] = r.json()
    if lat is not None:
        location(n, p, lat, lng)
    if online:
        go_online(n, p)
    elif lat is not None:
        r = put(n, "/v1/providers/me/status", {"online": False}, token)
        assert r.status == 200, r.body
    return p


def location(n, p, lat, lng, wait=False):
    """The provider's live position, through feira_realtime (a sign of
    life; at most one a second per provider: wait=True retries)."""
    deadline = time.monotonic() + 5
    while True:
        r = put(n, "/v1/providers/me/location", {"lat": lat, "lng": lng},
                p["token"])
        if r.status == 429 and wait and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        assert r.status == 204, r.body
        return


def go_online(n, p):
    r = put(n, "/v1/providers/me/status", {"online": True}, p["token"])
    assert r.status == 200, r.body
    return r.json()


def create_category(n, slug=None, name=None, admin=None):
    slug = slug or f"cat-{uuid.uuid4().hex[:10]}"
    r = n.post("/v1/categories", {"slug": slug, "name": name or slug},
               token=admin or admin_token(n))
    assert r.status == 201, r.body
    return r.json()


def create_offering(n, p, category, **offer):
    """p: a provider (a dict with "token", as provider() returns)."""
    r = n.post("/v1/offerings", offering(category, **offer),
               token=p["token"])
    assert r.status == 201, r.body
    return r.json()


def create_request(n, c, category, lat=-23.5505, lng=-46.6333, **extra):
    return new_request(n, c, category, lat, lng, **extra)


def transition(n, who, request_id, action, expect=200):
    r = n.post(f"/v1/requests/{request_id}/{action}", token=who["token"])
    assert r.status == expect, (r.status, r.body)
    return r.json()


def accept(n, p, request_id, expect=200):
    return transition(n, p, request_id, "accept", expect)


def start(n, p, request_id, expect=200):
    return transition(n, p, request_id, "start", expect)


def complete(n, p, request_id, expect=200):
    return transition(n, p, request_id, "complete", expect)


def cancel(n, who, request_id, expect=200):
    return transition(n, who, request_id, "cancel", expect)


def client(n):
    c = register(n, role="client")
    c["token"] = c["access_token"]
    c["id"] = c["user"]["id"]
    return c


def new_request(n, c, category, lat=-23.5505, lng=-46.6333, **extra):
    body = {"category": category, "description": "Two rooms, one bathroom",
            "location": {"lat": lat, "lng": lng}}
    body.update(extra)
    r = n.post("/v1/requests", body, token=c["token"])
    assert r.status == 201, r.body
    return r.json()


def move(lat, lng, north_km=0.0, east_km=0.0):
    """The point north_km and east_km away (small distances)."""
    dlat = north_km / 111.19492664455873
    dlng = east_km / (111.19492664455873 * math.cos(math.radians(lat)))
    return lat + dlat, lng + dlng


def haversine(lat1, lng1, lat2, lng2, r=6371.0088):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = (math.sin(dp / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2)
    return 2 * r * math.asin(math.sqrt(min(1.0, a)))


def score(distance_km, rating, amount, budget=None, received=0, accepted=0):
    """docs/matching.md, in Python."""
    s_d = 1.0 / (1.0 + distance_km / 5.0)
    s_r = (rating - 1.0) / 4.0 if 1.0 <= rating <= 5.0 else 0.5
    if budget is None:
        s_p = 0.5
    elif amount <= budget:
        s_p = 1.0
    else:
        s_p = max(0.0, 1.0 - (amount - budget) / budget)
    accepted = min(accepted, received)
    s_a = (accepted + 1) / (received + 2)
    return 0.4 * s_d + 0.3 * s_r + 0.2 * s_p + 0.1 * s_a


def offer_counts(provider_id):
    """Offers received and accepted this month and the one before, from
    feira:offers ("<YYYYMM> <offered> <accepted>[ <YYYYMM> ...]")."""
    now = datetime.datetime.utcnow()
    month = now.strftime("%Y%m")
    before = (now.replace(day=1)
              - datetime.timedelta(days=1)).strftime("%Y%m")
    value = rdb().hget("feira:offers", provider_id)
    f = value.split() if value else []
    buckets = {f[i]: (int(f[i + 1]), int(f[i + 2]))
               for i in range(0, len(f), 3)}
    received = accepted = 0
    if f and f[0] == month:
        for m in (month, before):
            received += buckets.get(m, (0, 0))[0]
            accepted += buckets.get(m, (0, 0))[1]
    elif f and f[0] == before:
        received, accepted = buckets[before]
    return received, accepted


def events(key, want, timeout=20):
    """The events of one request on feira.requests, in log order; waits
    until there are `want` of them (more are returned if present)."""
    return events_of([key], want, timeout)[key]


def events_of(keys, want, timeout=30):
    """The same for several requests at once: {key: [events]}."""
    brokers = stack_env()["KAFKA_BROKERS"]
    keys = {k.encode(): k for k in keys}
    c = Consumer({"bootstrap.servers": brokers,
                  "group.id": f"test-{uuid.uuid4().hex}",
                  "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(TOPIC, timeout=10)
        parts = md.topics[TOPIC].partitions
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in parts])
        got = {k: [] for k in keys.values()}
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                idle += 1
                if idle >= 2 and all(len(v) >= want for v in got.values()):
                    break
                continue
            idle = 0
            if m.error():
                continue
            if m.key() in keys:
                got[keys[m.key()]].append(json.loads(m.value()))
        return got
    finally:
        c.close()


def claims(request_id):
    return list(db().request_transitions.find(
        {"request_id": ObjectId(request_id)}))
