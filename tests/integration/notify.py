"""Helpers of the notification worker tests: Mailpit, the worker process,
users and devices in the test stack's MongoDB, events on its Kafka."""

import datetime
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from bson import ObjectId
from confluent_kafka import Consumer, KafkaError, Producer
import pymongo

import memcheck
from feira import ROOT, free_port, stack_env, wait_for

BIN = os.path.join(ROOT, "build", "bin")
# FEIRA_WORKERS_DIR=build/asan/workers runs the suite on the ASan build
WORKER = os.path.join(os.environ.get("FEIRA_WORKERS_DIR")
                      or os.path.join(ROOT, "build", "workers"),
                      "notification-worker")


def offset():
    return int(os.environ.get("FEIRA_TEST_PORT_OFFSET", "10000"))


def http_json(url, method="GET", timeout=5):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        if "json" not in r.headers.get("Content-Type", ""):
            return body.decode()
        return json.loads(body) if body else None


class Mailpit:
    """A real SMTP server with an HTTP API, on ports derived from the test
    stack's offset (SMTP 1025+offset+n, HTTP 8025+offset+n)."""

    def __init__(self, n=0, dedupe=False, tls=None):
        self.dir = tempfile.mkdtemp(prefix="feira-mailpit-")
        self.smtp_port = 1025 + offset() + n
        self.http_port = 8025 + offset() + n
        self.api = f"http://127.0.0.1:{self.http_port}/api/v1"
        args = [os.path.join(BIN, "mailpit"),
                "--smtp", f"127.0.0.1:{self.smtp_port}",
                "--listen", f"127.0.0.1:{self.http_port}",
                "--database", os.path.join(self.dir, "mailpit.db"),
                "--max", "100000", "--disable-version-check",
                # raw messages stored as they are: zstd took 5% of its CPU
                # per message, and these databases live for one test run
                "--compression", "0",
                "--smtp-auth-accept-any", "--smtp-disable-rdns", "--quiet"]
        if dedupe:
            args.append("--ignore-duplicate-ids")
        if tls:
            # STARTTLS offered, and required of every client
            args += ["--smtp-tls-cert", tls[0], "--smtp-tls-key", tls[1],
                     "--smtp-require-starttls"]
        else:
            args.append("--smtp-auth-allow-insecure")
        self.log = open(os.path.join(self.dir, "mailpit.log"), "w")
        # its Go collector 4 times less often: a tenth of its CPU per
        # message at the default; and one core for its goroutines: with two
        # its scheduler spins for work, a tenth more (bench/notifications.sh;
        # one core stores over 1,000 messages a second)
        env = dict(os.environ)
        env.setdefault("GOGC", "400")
        env.setdefault("GOMAXPROCS", "1")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env=env)
        try:
            wait_for(self.ready, timeout=20, what="Mailpit")
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            with open(os.path.join(self.dir, "mailpit.log")) as f:
                log = f.read()
            self.stop()
            raise AssertionError(f"Mailpit did not start:\n{log}")

    def ready(self):
        assert self.proc.poll() is None, "Mailpit exited"
        try:
            http_json(f"{self.api}/info")
            return True
        except OSError:
            return False

    def clear(self):
        http_json(f"{self.api}/messages", method="DELETE")

    def messages(self):
        out, start = [], 0
        while True:
            page = http_json(f"{self.api}/messages?start={start}&limit=500")
            out += page["messages"]
            start += len(page["messages"])
            if not page["messages"] or start >= page["messages_count"]:
                return out

    def to(self, address):
        return [m for m in self.messages()
                if any(t["Address"] == address for t in m["To"])]

    def message(self, mid):
        return http_json(f"{self.api}/message/{mid}")

    def headers(self, mid):
        return http_json(f"{self.api}/message/{mid}/headers")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Worker:
    """The real notification worker binary, on its own topics and group;
    a subclass names another worker of workers/ (binary, name).  wrapper:
    a command the worker runs under (memcheck.wrapper())."""

    binary = WORKER
    name = "notification-worker"

    def __init__(self, env, wrapper=()):
        self.env = env
        self.wrapper = list(wrapper)
        self.port = int(env["FEIRA_WORKER_LISTEN"].rsplit(":", 1)[1])
        self.logfile = tempfile.NamedTemporaryFile(
            prefix=f"feira-{self.name}-", suffix=".log", delete=False)
        self.proc = None

    def start(self):
        binary = memcheck.plain(self.binary) if self.wrapper else self.binary
        self.proc = subprocess.Popen(self.wrapper + [binary], env=self.env,
                                     stdout=self.logfile, stderr=self.logfile)
        wait_for(self.healthy, timeout=120 if self.wrapper else 30,
                 what=f"{self.name} /healthz")
        return self

    def healthy(self):
        assert self.proc.poll() is None, "worker exited:\n" + self.log()
        try:
            return http_json(f"http://127.0.0.1:{self.port}/healthz")["status"] == "ok"
        except OSError:
            return False

    def metrics(self):
        # under valgrind the worker's threads take turns: slower answers
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/metrics",
                timeout=60 if self.wrapper else 5) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """The value of one sample, 0 when absent."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in self.metrics().splitlines():
            if line.startswith(name + "{") and \
                    line[len(name) + 1:].startswith(want):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self):
        with open(self.logfile.name, errors="replace") as f:
            return f.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout=40):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n"
                                 + self.log()[-3000:])

    def check_log(self):
        text = self.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                    "offset was not in flight"):
            assert bad not in text, f"{bad} in the worker log:\n{text[-3000:]}"


class Stack:
    """MongoDB and Kafka of the test stack."""

    def __init__(self):
        env = stack_env()
        self.mongo_uri = env["MONGO_URI"]
        self.brokers = env["KAFKA_BROKERS"]
        self.client = pymongo.MongoClient(self.mongo_uri)
        self.db = self.client.get_default_database("feira")
        self.producer = Producer({"bootstrap.servers": self.brokers,
                                  "enable.idempotence": True})

    def user(self, name="Test User", role="client", email=True, phone=None,
             preferences=None, devices=0):
        uid = ObjectId()
        doc = {"_id": uid, "name": name, "role": role,
               "rating_avg": 0, "rating_count": 0,
               "created_at": datetime.datetime.now(datetime.timezone.utc)}
        if email:
            doc["email"] = f"{role}-{uid}@example.test"
            doc["email_lc"] = doc["email"]
        if phone:
            doc["phone"] = phone
        if preferences is not None:
            doc["preferences"] = preferences
        self.db.users.insert_one(doc)
        doc["devices"] = []
        for i in range(devices):
            d = {"_id": ObjectId(), "user_id": uid, "platform": "android",
                 "token": f"fcm-{uid}-{i}-{secrets.token_hex(8)}",
                 "created_at": doc["created_at"]}
            self.db.devices.insert_one(d)
            doc["devices"].append(d)
        doc["id"] = str(uid)
        return doc

    def produce(self, topic, event, key=None):
        value = event if isinstance(event, (bytes, str)) else json.dumps(event)
        self.producer.produce(topic, value=value,
                              key=key or (event.get("data", {}).get("request_id")
                                          if isinstance(event, dict) else None)
                              or "k")

    def flush(self):
        assert self.producer.flush(30) == 0, "events not delivered to Kafka"

    def inbox(self, user):
        return list(self.db.notifications.find({"user_id": user["_id"]}))

    def deliveries(self, **q):
        """Delivery records ("sending", "deferred"), written before a send."""
        return list(self.db.notification_deliveries.find(q))

    def outcomes(self, **q):
        """Delivery outcomes ("sent", "failed"), written after it."""
        return list(self.db.notification_outcomes.find(q))

    def read_topic(self, topic, timeout=30):
        """Every message of a topic, from the start to its end now."""
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "test-reader-" + secrets.token_hex(4),
                      "auto.offset.reset": "earliest",
                      "enable.auto.commit": False,
                      "enable.partition.eof": True})
        c.subscribe([topic])
        out, ended = [], set()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        ended.add(m.partition())
                    if len(ended) >= len(c.assignment()) > 0:
                        return out
                    continue
                out.append(m)
        finally:
            c.close()
        raise AssertionError(f"{topic} not read to its end in {timeout}s")


def event(type_, data, actor_role="provider"):
    return {"id": str(ObjectId()), "type": type_,
            "occurred_at": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": {"id": str(ObjectId()), "role": actor_role},
            "data": data}


def accepted(client, provider, category="plumbing"):
    return event("request.accepted", {
        "request_id": str(ObjectId()), "client_id": client["id"],
        "provider_id": provider["id"], "category": category,
        "from": "open", "to": "accepted",
        "price": {"amount": 12050, "currency": "BRL"}})
