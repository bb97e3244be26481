"""Helpers of the chat tests: the one place that creates service requests
(feira_services owns them: switch `new_request` to its API once it is
merged), users, sends, and a reader of the feira.chat topic."""

import datetime
import json
import secrets
import time
import uuid

import pymongo
from bson import ObjectId
from confluent_kafka import Consumer, KafkaError, TopicPartition

from authutil import register
from feira import stack_env


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


def new_request(client_id, provider_id=None, offered_to=(), status="open"):
    """A request document of the `requests` contract
    (../briefs/requests-schema.md), stored directly in MongoDB until the
    services module is merged.  Returns its id (24 hex)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    doc = {"client_id": ObjectId(client_id), "category": "cleaning",
           "description": "chat test",
           "location": {"lat": -23.55, "lng": -46.63},
           "status": status,
           "offered_to": [ObjectId(p) for p in offered_to],
           "created_at": now, "updated_at": now,
           "expires_at": now + datetime.timedelta(hours=1)}
    if provider_id:
        doc["provider_id"] = ObjectId(provider_id)
        doc["offering_id"] = ObjectId()
        doc["price"] = {"amount": 10000, "currency": "BRL"}
        doc["pricing"] = "fixed"
        doc["accepted_at"] = now
    rid = str(db().requests.insert_one(doc).inserted_id)
    CREATED.append(rid)
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
