"""Helpers of the payment tests: service requests (through feira_services'
API), a recording proxy in front of stripe-mock, a local PayPal stand-in,
signed webhooks and the payment worker process."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bson import ObjectId

import requestutil
from feira import ROOT, stack_env, wait_for
from notify import Worker

WORKER = os.path.join(os.environ.get("FEIRA_WORKERS_DIR")
                      or os.path.join(ROOT, "build", "workers"),
                      "payment-worker")


def offset():
    return int(os.environ.get("FEIRA_TEST_PORT_OFFSET", "10000"))


def stripe_mock_url():
    return f"http://127.0.0.1:{12111 + offset()}"


def stripe_webhook_secret():
    path = os.path.join(stack_env()["STACK_DIR"], "secrets",
                        "stripe-webhook-secret")
    with open(path, "rb") as f:
        return f.read().strip()


# where the payment tests' requests are made, and their providers wait
LAT, LNG = -23.55, -46.63

# the actions that bring an offered request to each status, through the API
# ("expired" is reached from "open" by feira_services' sweep, waited for)
STEPS = {"open": [], "accepted": ["accept"],
         "in_progress": ["accept", "start"],
         "completed": ["accept", "start", "complete"],
         "cancelled": ["cancel"], "expired": []}


def create_request(n, client, provider, status="accepted", amount=12000,
                   currency="BRL"):
    """THE one helper that makes a service request, through feira_services'
    API: the provider gets an offering of `amount` in a category of its
    own and goes online at the request's place, so the request is offered
    to it; the client creates the request; then the provider (the client,
    to cancel) moves it to `status`.  client and provider: (id, token) as
    rtutil.user() returns.  Returns the request's id."""
    c, p = {"token": client[1]}, {"token": provider[1]}
    category = requestutil.new_category(n, prefix="pay")
    requestutil.create_offering(n, p, category, amount=amount,
                                currency=currency)
    requestutil.location(n, p, LAT, LNG, wait=True)
    requestutil.go_online(n, p)
    created = requestutil.new_request(n, c, category, LAT, LNG,
                                      description="a leaking tap")
    rid = created["id"]
    assert created["offered_to"] == [provider[0]], created
    for action in STEPS[status]:
        requestutil.transition(n, c if action == "cancel" else p, rid,
                               action)
    if status == "expired":
        wait_for(lambda: requestutil.db().requests.find_one(
            {"_id": ObjectId(rid)})["status"] == "expired", timeout=30,
            what=f"request {rid} expired")
    return rid


def create_unpriced_request(db, client_id, provider_id):
    """An accepted request WITHOUT a price, stored directly in MongoDB.
    feira_services never makes one (its accept always copies the offering's
    price): this document exists only to test feira_payments' defence
    against it (409, nothing charged)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    doc = {"_id": ObjectId(), "client_id": ObjectId(client_id),
           "category": "plumbing", "description": "a leaking tap",
           "location": {"lat": LAT, "lng": LNG},
           "status": "accepted", "offered_to": [ObjectId(provider_id)],
           "provider_id": ObjectId(provider_id), "accepted_at": now,
           "created_at": now, "updated_at": now,
           "expires_at": now + datetime.timedelta(hours=1)}
    db.requests.insert_one(doc)
    return str(doc["_id"])


def stripe_signature(body, secret, t=None, extra_v1=()):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    parts = [f"t={t}"] + [f"v1={v}" for v in extra_v1] + [f"v1={mac}"]
    return ",".join(parts)


def stripe_event(type_, pid, pi="pi_test", event_id=None):
    return {"id": event_id or f"evt_{secrets.token_hex(8)}",
            "object": "event", "type": type_, "api_version": "2024-06-20",
            "created": int(time.time()),
            "data": {"object": {"id": pi, "object": "payment_intent",
                                "metadata": {"payment_id": pid}}}}


class _Server:
    def start(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class StripeProxy(_Server):
    """Forwards to stripe-mock (which checks every request against Stripe's
    OpenAPI spec and answers canned objects) and records what the worker
    sent.  stripe-mock does not keep idempotency keys, so the proxy plays
    Stripe's part of that contract: a key seen before gets the first answer
    again, without reaching stripe-mock (a charge made once)."""

    def __init__(self, upstream=None):
        self.upstream = upstream or stripe_mock_url()
        self.calls = []          # (method, path, idempotency key, form)
        self.forwarded = []      # the same, only those that reached Stripe
        self.answers = {}
        self.fail_next = 0
        self.lock = threading.Lock()

    def handler(self):
        proxy = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                key = self.headers.get("Idempotency-Key")
                call = (self.command, self.path, key, body.decode())
                with proxy.lock:
                    proxy.calls.append(call)
                    if proxy.fail_next > 0:
                        proxy.fail_next -= 1
                        return self.reply(503, b'{"error":{"type":"api_error"}}')
                    if key and key in proxy.answers:
                        return self.reply(*proxy.answers[key])
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method="POST",
                    headers={k: v for k, v in self.headers.items()
                             if k.lower() in ("authorization", "content-type",
                                              "stripe-version",
                                              "idempotency-key")})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, out = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, out = e.code, e.read()
                with proxy.lock:
                    proxy.forwarded.append(call)
                    if key and status < 500:
                        proxy.answers.setdefault(key, (status, out))
                        status, out = proxy.answers[key]
                self.reply(status, out)

            def reply(self, status, out):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        return H

    def keys(self, pid):
        with self.lock:
            return [c[2] for c in self.calls if c[2] and c[2].startswith(pid)]

    def forwarded_for(self, pid, step):
        with self.lock:
            return [c for c in self.forwarded if c[2] == f"{pid}:{step}"]


class PayPalReceiver(_Server):
    """PayPal's REST API as the worker uses it, from PayPal's documented
    shapes: OAuth2 client credentials, Orders v2 (create, capture),
    refunds of captures and verify-webhook-signature.  PayPal signs its
    webhooks with a certificate; this stand-in checks an HMAC of the same
    fields with `signing_key` instead (sign() below)."""

    def __init__(self, client_id="paypal-client", secret="paypal-secret",
                 webhook_id="WH-TEST", expires_in=3600):
        self.client_id, self.secret = client_id, secret
        self.webhook_id = webhook_id
        self.expires_in = expires_in
        self.signing_key = secrets.token_bytes(16)
        self.requests = []
        self.tokens = []
        self.orders = {}
        self.by_request_id = {}
        self.lock = threading.Lock()

    def sign(self, event, transmission_id=None, t=None):
        tid = transmission_id or secrets.token_hex(8)
        t = t or datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        crc = zlib.crc32(json.dumps(event, sort_keys=True,
                                    separators=(",", ":")).encode())
        sig = hmac.new(self.signing_key,
                       f"{tid}|{t}|{self.webhook_id}|{crc}".encode(),
                       hashlib.sha256).hexdigest()
        return {"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": t,
                "PAYPAL-TRANSMISSION-SIG": sig,
                "PAYPAL-CERT-URL": f"{self.url}/certs/test",
                "PAYPAL-AUTH-ALGO": "SHA256withRSA"}

    def handler(self):
        pp = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with pp.lock:
                    pp.requests.append((self.path, dict(self.headers), raw))
                    return self.route(raw)

            def route(self, raw):
                if self.path == "/v1/oauth2/token":
                    want = base64.b64encode(
                        f"{pp.client_id}:{pp.secret}".encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {want}" \
                            or raw != b"grant_type=client_credentials":
                        return self.reply(401, {"error": "invalid_client"})
                    tok = "A21AA" + secrets.token_hex(12)
                    pp.tokens.append(tok)
                    return self.reply(200, {"access_token": tok,
                                            "token_type": "Bearer",
                                            "expires_in": pp.expires_in})
                auth = self.headers.get("Authorization", "")
                if not pp.tokens or auth != f"Bearer {pp.tokens[-1]}":
                    return self.reply(401, {"name": "AUTHENTICATION_FAILURE"})
                body = json.loads(raw or b"{}")
                rid = self.headers.get("PayPal-Request-Id")
                if rid and rid in pp.by_request_id:
                    return self.reply(*pp.by_request_id[rid])
                out = self.answer(body)
                if rid and out[0] < 500:
                    pp.by_request_id[rid] = out
                return self.reply(*out)

            def answer(self, body):
                if self.path == "/v2/checkout/orders":
                    unit = body["purchase_units"][0]
                    assert re.fullmatch(r"\d+\.\d\d", unit["amount"]["value"])
                    oid = secrets.token_hex(8).upper()
                    pp.orders[oid] = {"unit": unit, "status": "PAYER_ACTION_REQUIRED"}
                    return 200, {"id": oid, "status": "PAYER_ACTION_REQUIRED",
                                 "links": [{"rel": "self", "method": "GET",
                                            "href": f"{pp.url}/v2/checkout/orders/{oid}"},
                                           {"rel": "payer-action", "method": "GET",
                                            "href": f"https://www.sandbox.paypal.com/checkoutnow?token={oid}"}]}
                m = re.fullmatch(r"/v2/checkout/orders/([A-Z0-9]+)/capture", self.path)
                if m:
                    o = pp.orders.get(m.group(1))
                    if o is None:
                        return 404, {"name": "RESOURCE_NOT_FOUND"}
                    o["status"] = "COMPLETED"
                    cap = "CAP" + secrets.token_hex(6).upper()
                    return 201, {"id": m.group(1), "status": "COMPLETED",
                                 "purchase_units": [{"reference_id": o["unit"]["reference_id"],
                                                     "payments": {"captures": [{
                                                         "id": cap, "status": "COMPLETED",
                                                         "custom_id": o["unit"]["custom_id"],
                                                         "amount": o["unit"]["amount"]}]}}]}
                m = re.fullmatch(r"/v2/payments/captures/([A-Z0-9]+)/refund", self.path)
                if m:
                    return 201, {"id": "REF" + secrets.token_hex(6).upper(),
                                 "status": "COMPLETED"}
                if self.path == "/v1/notifications/verify-webhook-signature":
                    crc = zlib.crc32(json.dumps(body["webhook_event"], sort_keys=True,
                                                separators=(",", ":")).encode())
                    want = hmac.new(pp.signing_key,
                                    f"{body['transmission_id']}|{body['transmission_time']}|"
                                    f"{body['webhook_id']}|{crc}".encode(),
                                    hashlib.sha256).hexdigest()
                    ok = hmac.compare_digest(want, body["transmission_sig"]) \
                        and body["webhook_id"] == pp.webhook_id
                    return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}
                return 404, {"name": "NOT_FOUND"}

            def reply(self, status, obj):
                out = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        return H

    def calls(self, path_re):
        with self.lock:
            return [r for r in self.requests if re.fullmatch(path_re, r[0])]


class PaymentWorker(Worker):
    """The real payment worker binary."""

    binary = WORKER
    name = "payment-worker"
