"""Faults under a steady load of real requests (issue 12): a dependency
stopped and started again while clients write.  What needs the missing
part answers 503 problem+json, what does not keeps serving, nginx
recovers without a restart, and every accepted write is there exactly
once afterwards: in the store, and on the topic (the Kafka outbox keeps
what the broker did not take, however long it is away)."""

import json
import threading
import time
import uuid

import bson
import pymongo
from confluent_kafka import Consumer

from authutil import register
from feira import request, service, stack_env, wait_for
from promtext import Metrics

OUTAGE_CONF = """
    feira_kafka_timeout          1s;
    feira_kafka_outbox_interval  300ms;
"""


def db():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()


def seed_completed_request(client_id, provider_id):
    """A completed request as feira_services stores it (docs/events.md)."""
    doc = {"_id": bson.ObjectId(), "client_id": bson.ObjectId(client_id),
           "provider_id": bson.ObjectId(provider_id), "category": "cleaning",
           "status": "completed", "description": "seeded by test_faults_load"}
    db().requests.insert_one(doc)
    return str(doc["_id"])


def topic_events(topic, ids, timeout=60):
    """{event id: times seen} of the events of IDS on TOPIC, read from the
    beginning until each arrived (or the time is up)."""
    consumer = Consumer({"bootstrap.servers": stack_env()["KAFKA_BROKERS"],
                         "group.id": f"test-faults-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest",
                         "enable.auto.commit": False,
                         "topic.metadata.refresh.interval.ms": 1000})
    consumer.subscribe([topic])
    seen = {}
    try:
        deadline = time.monotonic() + timeout
        quiet_until = None
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                # every one seen: a few more seconds for a duplicate
                if set(ids) <= set(seen):
                    quiet_until = quiet_until or time.monotonic() + 3
                    if time.monotonic() > quiet_until:
                        break
                continue
            event = json.loads(msg.value())
            if event.get("id") in ids:
                seen[event["id"]] = seen.get(event["id"], 0) + 1
    finally:
        consumer.close()
    return seen


def outbox(n):
    return Metrics(n.get("/metrics").body.decode())


class Load:
    """Clients sending one kind of request in a loop, every answer kept."""

    def __init__(self, send, threads=3):
        self.send = send
        self.answers = []
        self.errors = []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.run)
                        for _ in range(threads)]

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.answers.append(self.send())
            except Exception as e:  # noqa: BLE001 - a lost answer counts
                self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join()


def test_kafka_away_longer_than_its_timeout_loses_no_event(nginx_factory):
    n = nginx_factory(conf=OUTAGE_CONF)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    pairs = []
    for _ in range(6):
        c = register(n, role="client")
        p = register(n, role="provider")
        pairs.append((c, p, seed_completed_request(c["user"]["id"],
                                                   p["user"]["id"])))

    reviews = []
    service("stop", "kafka")
    try:
        # the API goes on: the write is stored, its event kept for later
        for c, p, rid in pairs:
            r = n.post(f"/v1/requests/{rid}/reviews", {"rating": 4},
                       token=c["access_token"])
            assert r.status == 201, r.body
            reviews.append(r.json()["id"])
            assert n.get(f"/v1/users/{p['user']['id']}",
                         token=c["access_token"]).status == 200

        # far longer than feira_kafka_timeout: librdkafka gave them up
        wait_for(lambda: outbox(n).get("feira_kafka_outbox_total",
                                         outcome="saved") >= len(reviews),
                 timeout=30, what="the events kept in the outbox")
        time.sleep(3)
        assert db().kafka_outbox.count_documents({}) >= len(reviews)
    finally:
        service("start", "kafka")

    wait_for(lambda: db().kafka_outbox.count_documents({}) == 0,
             timeout=90, what="the outbox emptied once Kafka is back")
    seen = topic_events("feira.reviews", reviews)
    assert seen == {rid: 1 for rid in reviews}
    # (any nginx sharing the store may have swept them: its worker 0 did)
    assert outbox(n).get("feira_kafka_outbox_total", outcome="lost") == 0


def test_nginx_stopping_while_kafka_is_away_keeps_the_events(nginx_factory):
    """nginx -s quit with undelivered events: they are stored as the
    worker exits, and the next nginx produces them."""
    first = nginx_factory(conf="feira_kafka_timeout 60s;")
    wait_for(lambda: first.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    c = register(first, role="client")
    p = register(first, role="provider")
    rids = [seed_completed_request(c["user"]["id"], p["user"]["id"])
            for _ in range(3)]

    reviews = []
    service("stop", "kafka")
    try:
        for rid in rids:
            r = first.post(f"/v1/requests/{rid}/reviews", {"rating": 5},
                           token=c["access_token"])
            assert r.status == 201, r.body
            reviews.append(r.json()["id"])
        first.stop()
        assert db().kafka_outbox.count_documents(
            {"topic": "feira.reviews"}) >= len(reviews)
    finally:
        service("start", "kafka")

    second = nginx_factory(conf="feira_kafka_outbox_interval 300ms;")
    wait_for(lambda: db().kafka_outbox.count_documents({}) == 0,
             timeout=90, what="the next nginx emptied the outbox")
    assert topic_events("feira.reviews", reviews) == {r: 1 for r in reviews}
    assert second.get("/healthz").status == 200


def test_mongo_away_under_load_503_then_every_write_once(nginx_factory):
    """Sign-ups (argon2 in the thread pool, then an insert) while the store
    goes away and comes back."""
    n = nginx_factory(workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")

    def write():
        email = f"load-{uuid.uuid4().hex}@example.test"
        r = request(n.port, "POST", "/v1/auth/register",
                    body={"email": email, "password": "correct horse 1",
                          "name": "Load", "role": "client"}, timeout=30)
        return email, r

    with Load(write) as load:
        time.sleep(1.5)
        service("stop", "mongo")
        try:
            time.sleep(3)
            # what needs no store is served all along
            for _ in range(20):
                assert n.get("/healthz").status == 200
        finally:
            service("start", "mongo")
        wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
                 what="/readyz 200 again")
        time.sleep(1.5)

    assert load.errors == []
    statuses = {}
    for _, r in load.answers:
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.status == 503:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == 503
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.get(201, 0) > 10 and statuses.get(503, 0) > 0, statuses

    # every accepted write is there, once
    accepted = [e for e, r in load.answers if r.status == 201]
    counts = {}
    for d in db().users.find({"email_lc": {"$in": accepted}}):
        counts[d["email_lc"]] = counts.get(d["email_lc"], 0) + 1
    assert counts == {e: 1 for e in accepted}


def test_redis_away_under_load_503_then_positions_again(nginx_factory):
    """Providers report positions (Redis) while clients read profiles
    (MongoDB only): with Redis away the positions are 503 problem+json,
    the profiles keep coming, and positions are taken again once Redis is
    back, without restarting nginx.  (Protected routes trust the last
    deny list for feira_auth_feed_timeout, then fail closed: 60 s here,
    longer than the outage.)"""
    import redis

    n = nginx_factory(workers=2,
                      directives={"feira_auth_feed_timeout": "60s"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    providers = [register(n, role="provider") for _ in range(4)]
    reader = register(n, role="client")
    host, port = stack_env()["REDIS_ADDR"].split(":")
    r = redis.Redis(host=host, port=int(port))

    def position(p, lat):
        return request(n.port, "PUT", "/v1/providers/me/location",
                       body={"lat": lat, "lng": -46.6},
                       headers={"Authorization":
                                f"Bearer {p['access_token']}"},
                       timeout=30)

    step = {"n": 0}

    def move():
        step["n"] += 1
        p = providers[step["n"] % len(providers)]
        time.sleep(0.3)  # one position a second per provider
        return p, position(p, -23.5 + step["n"] * 1e-5)

    def read():
        return None, request(
            n.port, "GET", f"/v1/users/{providers[0]['user']['id']}",
            headers={"Authorization": f"Bearer {reader['access_token']}"},
            timeout=30)

    with Load(move, threads=1) as moves, Load(read, threads=2) as reads:
        time.sleep(2)
        service("stop", "redis")
        try:
            time.sleep(4)
        finally:
            service("start", "redis")
        wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
                 what="/readyz 200 again")
        time.sleep(3)

    assert moves.errors == [] and reads.errors == []
    bad = [a.body for _, a in reads.answers if a.status != 200]
    assert bad == [], bad[:3]
    # reads never needed Redis
    assert {a.status for _, a in reads.answers} == {200}
    statuses = [a.status for _, a in moves.answers]
    assert set(statuses) <= {204, 429, 503}, statuses
    assert 503 in statuses and statuses[-1] == 204, statuses
    for _, a in moves.answers:
        if a.status == 503:
            assert a.headers["content-type"] == "application/problem+json"
    # the last accepted position of each provider is the one kept
    last = {}
    for p, a in moves.answers:
        if a.status == 204:
            last[p["user"]["id"]] = True
    seen = r.zmscore("feira:seen", list(last))
    assert all(s is not None for s in seen)


def test_a_worker_killed_with_events_queued_loses_none(nginx_factory):
    """An nginx worker SIGKILLed while Kafka is away, its queue full of the
    events of accepted reviews: each was stored before its answer, so the
    master's new worker produces every one of them, once."""
    import os
    import signal
    import subprocess

    n = nginx_factory(conf="feira_kafka_timeout 2s;\n"
                           "feira_kafka_outbox_interval 300ms;")
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    c = register(n, role="client")
    p = register(n, role="provider")
    rids = [seed_completed_request(c["user"]["id"], p["user"]["id"])
            for _ in range(4)]

    reviews = []
    service("stop", "kafka")
    try:
        for rid in rids:
            r = n.post(f"/v1/requests/{rid}/reviews", {"rating": 3},
                       token=c["access_token"])
            assert r.status == 201, r.body
            reviews.append(r.json()["id"])
        worker = int(subprocess.run(
            ["pgrep", "-P", str(n.master_pid())], capture_output=True,
            text=True).stdout.split()[0])
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: n.get("/healthz").status == 200, timeout=10,
                 what="a new worker")
    finally:
        service("start", "kafka")

    wait_for(lambda: db().kafka_outbox.count_documents(
        {"topic": "feira.reviews"}) == 0, timeout=90,
        what="the outbox emptied by the new worker")
    assert topic_events("feira.reviews", reviews) == {r: 1 for r in reviews}

    # the master's alert about the kill is this test's doing, not a fault
    with open(n.error_log) as f:
        log = f.read()
    assert f"worker process {worker} exited on signal 9" in log
    with open(n.error_log, "w") as f:
        f.write(log.replace(f"[alert] {n.master_pid()}#",
                            f"[killed-by-test] {n.master_pid()}#"))
