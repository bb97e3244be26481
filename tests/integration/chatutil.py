"""Helpers of the chat tests: the one place that creates service requests
(through feira_services' API), users, sends, and a reader of the
feira.chat topic."""

import json
import secrets
import time
import uuid

import pymongo
from bson import ObjectId
from confluent_kafka import Consumer, KafkaError, TopicPartition

import requestutil
from authutil import register
from feira import stack_env, wait_for


def db():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()


# the requests of the running test, whose messages are removed after it:
# under FerretDB every query scans the whole collection
CREATED = []


def forget_messages():
    """Removes the messages of the requests made since the last call."""
    if CREATED:
        db().messages.delete_many(
            {"request_id": {"$in": [ObjectId(r) for r in CREATED]}})
        CREATED.clear()


# where the chat tests' requests are made, and their providers wait
LAT, LNG = -23.55, -46.63


def new_request(n, client, offered_to=(), accepted_by=None):
    """A service request made through feira_services' API, in a category of
    its own: each provider of `offered_to` (and `accepted_by`) gets an
    offering in it and goes online at the request's place, so the request
    is offered to exactly them; then `accepted_by` accepts it.  client and
    providers: (id, token) as user() returns.  Returns its id (24 hex)."""
    providers = list(offered_to) + ([accepted_by] if accepted_by else [])
    category = requestutil.new_category(n, prefix="chat")
    for pid, ptok in providers:
        p = {"id": pid, "token": ptok}
        requestutil.create_offering(n, p, category)
        # feira_realtime remembers a provider's categories for a while
        # (feira_realtime_lookup_cache): a new one is in its GEO set once
        # a position lands after that
        geo = f"feira:geo:{category}"
        wait_for(lambda: (requestutil.location(n, p, LAT, LNG, wait=True),
                          requestutil.rdb().zscore(geo, pid))[1] is not None,
                 timeout=15, what=f"the provider in {geo}")
        requestutil.go_online(n, p)
    created = requestutil.new_request(n, {"token": client[1]}, category,
                                      LAT, LNG,
                                      description="chat test")
    rid = created["id"]
    CREATED.append(rid)
    assert sorted(created["offered_to"]) == sorted(p for p, _ in providers)
    if accepted_by:
        requestutil.accept(n, {"token": accepted_by[1]}, rid)
    return rid


def user(n, role="client"):
    """A registered user: (id, access token)."""
    u = register(n, role=role)
    return u["user"]["id"], u["access_token"]


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def cmid():
    return uuid.uuid4().hex


def send(n, rid, token, text, client_msg_id=None, **extra):
    body = {"text": text, "client_msg_id": client_msg_id or cmid()}
    body.update(extra)
    return n.post(f"/v1/requests/{rid}/messages", body, token=token)


def stored(rid, **q):
    q["request_id"] = ObjectId(rid)
    return list(db().messages.find(q))


class ChatTopic:
    """A real consumer of feira.chat, positioned at the topic's end when
    created: what it reads afterwards was produced by the test."""

    def __init__(self, topic="feira.chat"):
        self.c = Consumer({"bootstrap.servers": stack_env()["KAFKA_BROKERS"],
                           "group.id": "chat-test-" + secrets.token_hex(4),
                           "enable.auto.commit": False,
                           "auto.offset.reset": "latest"})
        md = self.c.list_topics(topic, timeout=30)
        parts = md.topics[topic].partitions
        tps = []
        for p in parts:
            lo, hi = self.c.get_watermark_offsets(TopicPartition(topic, p),
                                                  timeout=30)
            tps.append(TopicPartition(topic, p, hi))
        self.c.assign(tps)

    def events(self, until, timeout=30):
        """Events read until `until(events)` is true."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.c.poll(0.5)
            if m is None or m.error():
                if m is not None and m.error().code() != \
                        KafkaError._PARTITION_EOF:
                    raise AssertionError(m.error())
                if until(out):
                    return out
                continue
            out.append((m.key().decode(), json.loads(m.value())))
            if until(out):
                return out
        raise AssertionError(f"feira.chat: condition not met, read {out}")

    def close(self):
        self.c.close()
