"""Helpers of the real-time tests: requests seeded in the store (the
services module owns them), events published with the very script of
docs/events.md (a test-only publisher; the nginx side is real), tokens,
and the nginx configuration the protocol tests use."""

import os
import re
import secrets
import socket
import time

import pymongo
import redis
from bson import ObjectId

from authutil import register, secret, sign
from feira import ROOT, stack_env

# a location with short timers and small limits, beside /v1/ws
TEST_WS = """
location = /t/ws {
    feira_auth_require;
    feira_auth_query_token        on;
    feira_realtime;
    feira_realtime_origins        https://app.feira.test http://localhost:3000;
    feira_realtime_max_message    1k;
    feira_realtime_send_queue     8k;
    feira_realtime_ping_interval  1s;
    feira_realtime_ping_timeout   1s;
    feira_realtime_close_timeout  1s;
    feira_realtime_send_timeout   3s;
    feira_realtime_max_subscriptions 3;
}
"""


def docs_script(name):
    """A Lua script of docs/events.md (`<!-- rt:<name> -->` block)."""
    with open(os.path.join(ROOT, "docs", "events.md")) as f:
        text = f.read()
    m = re.search(r"<!-- rt:%s -->\s*```lua\n(.*?)```" % name, text, re.S)
    assert m, f"no rt:{name} script in docs/events.md"
    return m.group(1)


def redis_client():
    host, port = stack_env()["REDIS_ADDR"].split(":")
    return redis.Redis(host=host, port=int(port))


def db():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()


class Publisher:
    """Publishes as a module would: the publish script, EVAL'd."""

    def __init__(self, history=100, ttl=86400):
        self.r = redis_client()
        self.script = docs_script("publish")
        self.history = history
        self.ttl = ttl

    def publish(self, channel, event):
        import json
        body = event if isinstance(event, str) else json.dumps(
            event, separators=(",", ":"))
        return self.r.eval(self.script, 2, f"feira:rt:seq:{channel}",
                           f"feira:rt:h:{channel}", f"feira:rt:{channel}",
                           body, self.history, self.ttl)


def user(n, role="client"):
    """A registered user: (id, access token)."""
    u = register(n, role=role)
    return u["user"]["id"], u["access_token"]


def seed_request(client_id, provider_id=None, offered_to=(), status="open",
                 category="cleaning"):
    doc = {"client_id": ObjectId(client_id), "status": status,
           "category": category, "description": "test",
           "location": {"lat": -23.55, "lng": -46.63}}
    if provider_id:
        doc["provider_id"] = ObjectId(provider_id)
    if offered_to:
        doc["offered_to"] = [ObjectId(p) for p in offered_to]
    return str(db().requests.insert_one(doc).inserted_id)


def set_status(request_id, status, provider_id=None):
    update = {"status": status}
    if provider_id:
        update["provider_id"] = ObjectId(provider_id)
    db().requests.update_one({"_id": ObjectId(request_id)}, {"$set": update})


def seed_offering(provider_id, category):
    db().offerings.insert_one({"provider_id": ObjectId(provider_id),
                               "category": category, "title": "test",
                               "price": {"amount": 1000, "currency": "BRL"}})


def mint(sub, role="client", ttl=3600, jti=None):
    """An access token signed with the stack's secret, any lifetime."""
    now = int(time.time())
    claims = {"sub": sub, "role": role, "jti": jti or secrets.token_hex(16),
              "iss": "feira", "aud": "feira-api", "iat": now,
              "exp": now + ttl, "token_use": "access"}
    return sign({"alg": "HS256", "typ": "JWT"}, claims, secret())


def new_id():
    return str(ObjectId())


class Ingest:
    """A line client of the TCP location ingest."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line if isinstance(line, bytes)
                          else (line + "\n").encode())

    def line(self, timeout=5):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def ask(self, line, timeout=5):
        self.send(line)
        return self.line(timeout)

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()
