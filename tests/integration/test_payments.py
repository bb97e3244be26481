"""feira_payments and the payment worker against the real stack: nginx,
FerretDB, Kafka, Redis, Stripe's stripe-mock (behind a recording proxy) and
a local PayPal stand-in; the real worker binary started and killed here."""

import json
import os
import secrets
import time
import uuid

import pytest
from bson import ObjectId

import memcheck
from feira import free_port, service, wait_for
from notify import Stack, event
from payutil import (PaymentWorker, PayPalReceiver, StripeProxy,
                     create_request, create_unpriced_request, stripe_event,
                     stripe_signature, stripe_webhook_secret)
from requestutil import cancel, complete, start
from rtutil import redis_client, user
from wsclient import WS


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    s.client.close()


@pytest.fixture(scope="module")
def stripe():
    p = StripeProxy().start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def paypal():
    p = PayPalReceiver().start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def worker_env(stack, stripe, paypal):
    env = dict(os.environ)
    env.update({
        "FEIRA_KAFKA_BROKERS": stack.brokers,
        "FEIRA_MONGO_URI": stack.mongo_uri,
        "FEIRA_REDIS": __import__("feira").stack_env()["REDIS_ADDR"],
        "FEIRA_WORKER_GROUP": f"feira-payment-test-{secrets.token_hex(4)}",
        "FEIRA_WORKER_LISTEN": f"127.0.0.1:{free_port()}",
        "FEIRA_WORKER_BACKOFF_MS": "100",
        "FEIRA_WORKER_BACKOFF_MAX_MS": "400",
        "FEIRA_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FEIRA_STRIPE_API_BASE": stripe.url,
        "FEIRA_STRIPE_SECRET_KEY": "sk_test_123",
        "FEIRA_PAYPAL_API_BASE": paypal.url,
        "FEIRA_PAYPAL_CLIENT_ID": paypal.client_id,
        "FEIRA_PAYPAL_CLIENT_SECRET": paypal.secret,
        "FEIRA_PAYPAL_WEBHOOK_ID": paypal.webhook_id,
    })
    return env


@pytest.fixture(scope="module")
def worker(worker_env):
    w = PaymentWorker(worker_env).start()
    yield w
    w.terminate()
    w.check_log()
    # secrets are never logged
    for secret in ("sk_test_123", "paypal-secret", "A21AA"):
        assert secret not in w.log()


@pytest.fixture
def api(nginx_factory):
    # requests expire soon: the "expired" case is reached through the sweep
    n = nginx_factory(conf="feira_kafka_timeout 3s;\n",
                      directives={"feira_services_request_ttl": "8s",
                                  "feira_services_sweep_interval": "200ms"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    return n


def parties(n, stack, unpriced=False, **kw):
    client, ctok = user(n, "client")
    provider, ptok = user(n, "provider")
    if unpriced:
        rid = create_unpriced_request(stack.db, client, provider)
    else:
        rid = create_request(n, (client, ctok), (provider, ptok), **kw)
    return {"client": client, "ctok": ctok, "provider": provider,
            "ptok": ptok, "rid": rid}


def pay(n, p, method="stripe", key=None, token=None):
    return n.post(f"/v1/requests/{p['rid']}/payments", {"method": method},
                  token=token or p["ctok"],
                  headers={"Idempotency-Key": key or uuid.uuid4().hex})


def status_of(n, pid, token):
    r = n.get(f"/v1/payments/{pid}", token=token)
    assert r.status == 200, r.body
    return r.json()


def wait_status(n, pid, token, want, timeout=30):
    return wait_for(lambda: (lambda b: b if b["status"] == want else None)(
        status_of(n, pid, token)), timeout=timeout,
        what=f"payment {pid} {want}")


def webhook(n, ev, secret=None, t=None, body=None, **kw):
    raw = body if body is not None else json.dumps(ev).encode()
    sig = stripe_signature(raw, secret or stripe_webhook_secret(), t=t, **kw)
    return n.post("/v1/webhooks/stripe", raw,
                  headers={"Stripe-Signature": sig,
                           "Content-Type": "application/json"}, timeout=30)


def payment_events(stack, pid, until=None):
    """The payment's events on feira.payments; with until, once that type
    is there (the status is stored before its event is published)."""
    def read():
        evs = [e for e in (json.loads(m.value())
                           for m in stack.read_topic("feira.payments"))
               if e["data"].get("payment_id") == pid]
        return evs if until is None or until in [e["type"] for e in evs] \
            else None
    return read() if until is None else \
        wait_for(read, timeout=30, interval=0.5, what=f"{until} on Kafka")


# the API: idempotency, access, states


def test_create_is_idempotent_and_replays(api, stack):
    p = parties(api, stack)
    first = pay(api, p, key="k-1")
    assert first.status == 202, first.body
    body = first.json()
    assert body["status"] == "pending" and body["amount"] == 12000
    assert body["currency"] == "BRL" and body["fee"] == 1200
    assert body["payer_id"] == p["client"] and body["payee_id"] == p["provider"]

    again = pay(api, p, key="k-1")
    assert again.status == 202
    assert again.json()["id"] == body["id"]
    assert again.headers.get("idempotent-replayed") == "true"

    other = api.post(f"/v1/requests/{p['rid']}/payments", {"method": "paypal"},
                     token=p["ctok"], headers={"Idempotency-Key": "k-1"})
    assert other.status == 422

    # one payment for the request, whatever the retries
    assert stack.db.payments.count_documents(
        {"request_id": ObjectId(p["rid"])}) == 1

    no_key = api.post(f"/v1/requests/{p['rid']}/payments",
                      {"method": "stripe"}, token=p["ctok"])
    assert no_key.status == 400
    assert "Idempotency-Key" in no_key.json()["detail"]


def test_concurrent_creates_make_one_payment(api, stack):
    """FerretDB's updates are not atomic: the payment's own insert, with an
    id derived from the request, is the claim."""
    from concurrent.futures import ThreadPoolExecutor
    p = parties(api, stack)
    with ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(lambda i: pay(api, p), range(8)))
    assert {a.status for a in answers} <= {202, 409}, \
        [(a.status, a.body) for a in answers]
    ids = {a.json()["id"] for a in answers if a.status == 202}
    assert len(ids) == 1
    assert stack.db.payments.count_documents(
        {"request_id": ObjectId(p["rid"])}) == 1


def test_create_access_and_states(api, stack):
    p = parties(api, stack)
    # the provider, another client: not theirs to pay
    assert pay(api, p, token=p["ptok"]).status == 403
    _, other = user(api, "client")
    assert pay(api, p, token=other).status == 403
    assert api.post(f"/v1/requests/{p['rid']}/payments", {"method": "stripe"},
                    headers={"Idempotency-Key": "x"}).status == 401

    for status in ("open", "cancelled", "expired"):
        q = parties(api, stack, status=status)
        r = pay(api, q)
        assert r.status == 409, (status, r.body)
    # a document feira_services never makes: the payments module's defence
    q = parties(api, stack, unpriced=True)
    assert pay(api, q).status == 409

    assert pay(api, {**p, "rid": str(ObjectId())}).status == 404
    assert pay(api, {**p, "rid": "not-an-id"}).status == 404

    # hostile bodies: 400, nothing stored
    for bad in ({"method": "bitcoin"}, {"method": {"$ne": None}}, {},
                {"method": "stripe", "amount": 1}):
        r = api.post(f"/v1/requests/{p['rid']}/payments", bad,
                     token=p["ctok"],
                     headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status == 400, (bad, r.body)
        assert r.headers["content-type"] == "application/problem+json"
    assert stack.db.payments.count_documents(
        {"request_id": ObjectId(p["rid"])}) == 0

    pid = pay(api, p).json()["id"]
    # payer and payee see it, others do not; only admins refund
    assert status_of(api, pid, p["ctok"])["id"] == pid
    assert status_of(api, pid, p["ptok"])["id"] == pid
    assert api.get(f"/v1/payments/{pid}", token=other).status == 403
    assert api.get(f"/v1/payments/{ObjectId()}", token=other).status == 404
    r = api.post(f"/v1/payments/{pid}/refund", token=p["ctok"],
                 headers={"Idempotency-Key": "r"})
    assert r.status == 403
    # a second live payment of the request: 409
    r = pay(api, p, method="paypal")
    assert r.status == 409


# the Stripe flow


def test_stripe_hold_capture_webhook_succeeded(api, stack, stripe, worker):
    p = parties(api, stack)
    ws = WS.connect(api.port, p["ctok"])
    ws.send_json({"type": "subscribe", "channel": f"request:{p['rid']}"})
    assert ws.recv_json()["type"] == "subscribed"

    created = pay(api, p)
    pid = created.json()["id"]

    # the worker holds the amount: a manual-capture PaymentIntent
    body = wait_status(api, pid, p["ctok"], "requires_action")
    assert body["client_secret"].startswith("pi_")
    # the payee never sees the payer's client_secret
    assert "client_secret" not in status_of(api, pid, p["ptok"])
    calls = [c for c in stripe.calls if c[2] == f"{pid}:create"]
    assert len(calls) == 1
    form = calls[0][3]
    assert "capture_method=manual" in form and "amount=12000" in form
    assert "currency=brl" in form and "transfer_data" not in form

    # the request is completed (feira_services publishes request.completed):
    # the hold is captured
    start(api, {"token": p["ptok"]}, p["rid"])
    complete(api, {"token": p["ptok"]}, p["rid"])
    wait_for(lambda: stripe.keys(pid) == [f"{pid}:create", f"{pid}:capture"],
             timeout=30, what="the capture")
    assert "/capture" in stripe.calls[-1][1] or any(
        c[1].endswith("/capture") for c in stripe.calls if c[2] == f"{pid}:capture")

    # Stripe says it succeeded
    pi = stack.db.payments.find_one({"_id": ObjectId(pid)})["stripe_payment_intent"]
    r = webhook(api, stripe_event("payment_intent.succeeded", pid, pi))
    assert r.status == 200 and r.json() == {"received": True}
    wait_status(api, pid, p["ctok"], "succeeded")

    # on the request's channel, in order
    seen = []
    while "payment.succeeded" not in seen:
        msg = ws.recv_json(timeout=10)
        if msg["type"] == "event":
            seen.append(msg["event"]["type"])
    # (feira_services' own request.* events share the channel)
    assert [t for t in seen if t.startswith("payment.")] == [
        "payment.pending", "payment.requires_action", "payment.succeeded"]
    assert [t for t in seen if t.startswith("request.")] == [
        "request.started", "request.completed"]
    ws.close()

    # and on the user's channel, through Redis history
    hist = redis_client().xrange(f"feira:rt:h:user:{p['client']}")
    assert [json.loads(e[1][b"e"])["type"] for e in hist][-1] == \
        "payment.succeeded"

    # on Kafka, each status once
    evs = payment_events(stack, pid, until="payment.succeeded")
    assert sorted(e["type"] for e in evs) == sorted(
        ["payment.pending", "payment.requires_action", "payment.succeeded"])
    for e in evs:
        assert set(e) >= {"id", "type", "occurred_at", "actor", "data"}
        assert e["data"]["amount"] == 12000 and e["data"]["fee"] == 1200

    m = worker.metrics()
    assert 'feira_payments_total{method="stripe",status="succeeded"}' in m
    assert 'feira_payments_amount_total{currency="BRL"}' in m

    # refunds: admin only, then refunded through Stripe's /v1/refunds
    from authutil import login_admin
    admin = login_admin(api)["access_token"]
    r = api.post(f"/v1/payments/{pid}/refund", token=admin,
                 headers={"Idempotency-Key": f"refund-{pid}"})
    assert r.status == 202, r.body
    wait_status(api, pid, p["ctok"], "refunded")
    assert stripe.forwarded_for(pid, "refund")[0][1] == "/v1/refunds"


def test_destination_charge_for_a_connected_provider(api, stack, stripe,
                                                     worker):
    p = parties(api, stack, amount=25000)
    stack.db.users.update_one({"_id": ObjectId(p["provider"])},
                              {"$set": {"stripe_account_id": "acct_1Test"}})
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    form = [c for c in stripe.calls if c[2] == f"{pid}:create"][0][3]
    assert "application_fee_amount=2500" in form
    assert "transfer_data%5Bdestination%5D=acct_1Test" in form or \
        "transfer_data[destination]=acct_1Test" in form


def test_cancelled_before_completion_releases_the_hold(api, stack, stripe,
                                                        worker):
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    # accepted -> cancelled by the client; feira_services publishes it
    cancel(api, {"token": p["ctok"]}, p["rid"])
    body = wait_status(api, pid, p["ctok"], "failed")
    assert body["failure_reason"] == "request_cancelled"
    assert len(stripe.forwarded_for(pid, "cancel")) == 1


def test_paid_request_cancelled_is_refunded(api, stack, stripe, worker):
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    assert webhook(api, stripe_event("payment_intent.succeeded",
                                     pid)).status == 200
    wait_status(api, pid, p["ctok"], "succeeded")
    # in_progress -> cancelled by the provider; feira_services publishes it
    start(api, {"token": p["ptok"]}, p["rid"])
    cancel(api, {"token": p["ptok"]}, p["rid"])
    wait_status(api, pid, p["ctok"], "refunded")
    assert len(stripe.forwarded_for(pid, "refund")) == 1


def test_a_command_that_keeps_failing_goes_to_the_dead_letters(stack,
                                                               worker):
    pid = str(ObjectId())          # no such payment: retried, then dead
    cmd = event("payment.create", {"payment_id": pid, "method": "stripe"})
    stack.produce("feira.payments.commands", cmd, key=pid)
    stack.flush()

    def dead():
        for m in stack.read_topic("feira.payments.commands.dlq", timeout=10):
            if m.key() == pid.encode():
                return m
    m = wait_for(dead, timeout=60, interval=1, what="the dead letter")
    assert json.loads(m.value()) == cmd
    headers = dict(m.headers())
    assert headers["feira-original-topic"] == b"feira.payments.commands"
    assert int(headers["feira-attempts"]) >= 2


# webhooks


def test_webhook_signatures(api, stack, worker):
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    ev = stripe_event("payment_intent.succeeded", pid)
    raw = json.dumps(ev).encode()

    bad = [
        webhook(api, ev, secret=b"whsec_not_the_secret"),
        webhook(api, ev, t=int(time.time()) - 301),
        # signed, then changed
        api.post("/v1/webhooks/stripe", raw.replace(b"succeeded", b"canceled"),
                 headers={"Stripe-Signature": stripe_signature(
                     raw, stripe_webhook_secret())}),
        api.post("/v1/webhooks/stripe", raw),
        api.post("/v1/webhooks/stripe", raw,
                 headers={"Stripe-Signature": "t=1,v1=zz"}),
    ]
    for r in bad:
        assert r.status == 400, r.body
        assert r.headers["content-type"] == "application/problem+json"
    assert "too old" in bad[1].json()["detail"]

    time.sleep(2)
    assert status_of(api, pid, p["ctok"])["status"] == "requires_action"

    # a rolled secret: any v1 may match
    r = webhook(api, ev, extra_v1=["0" * 64])
    assert r.status == 200
    wait_status(api, pid, p["ctok"], "succeeded")


def test_webhook_replayed_and_out_of_order_applied_once(api, stack, worker):
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")

    ok = stripe_event("payment_intent.succeeded", pid)
    late = stripe_event("payment_intent.processing", pid)
    failed = stripe_event("payment_intent.payment_failed", pid)
    for _ in range(5):
        assert webhook(api, ok).status == 200
    wait_status(api, pid, p["ctok"], "succeeded")
    # late and contrary events change nothing
    assert webhook(api, late).status == 200
    assert webhook(api, failed).status == 200
    time.sleep(3)
    assert status_of(api, pid, p["ctok"])["status"] == "succeeded"

    evs = payment_events(stack, pid, until="payment.succeeded")
    assert [e["type"] for e in evs].count("payment.succeeded") == 1
    assert "payment.failed" not in [e["type"] for e in evs]
    assert stack.db.payment_webhook_events.count_documents(
        {"_id": f"stripe:{ok['id']}"}) == 1
    wait_for(lambda: "feira_payment_webhooks_replayed_total" in
             worker.metrics(), timeout=10, what="the replay counter")


# PayPal


def paypal_hook(api, paypal, ev, headers=None):
    raw = json.dumps(ev).encode()
    hdrs = headers or paypal.sign(ev)
    hdrs["Content-Type"] = "application/json"
    return api.post("/v1/webhooks/paypal", raw, headers=hdrs, timeout=30)


def test_paypal_order_approve_capture(api, stack, paypal, worker):
    tokens_before = len(paypal.tokens)
    ps = [parties(api, stack, amount=12345) for _ in range(2)]
    pids = [pay(api, p, method="paypal").json()["id"] for p in ps]
    bodies = [wait_status(api, pid, p["ctok"], "requires_action")
              for pid, p in zip(pids, ps)]
    for b in bodies:
        assert b["approve_url"].startswith("https://www.sandbox.paypal.com/")
    creates = paypal.calls(r"/v2/checkout/orders")
    mine = [c for c in creates
            if c[1].get("PayPal-Request-Id") in (f"{pid}:create" for pid in pids)]
    assert len(mine) == 2
    assert json.loads(mine[0][2])["purchase_units"][0]["amount"]["value"] \
        == "123.45"
    # one token for both orders (cached until it expires)
    assert len(paypal.tokens) - tokens_before <= 1

    p, pid = ps[0], pids[0]
    order = stack.db.payments.find_one({"_id": ObjectId(pid)})["paypal_order_id"]
    ev = {"id": f"WH-{secrets.token_hex(6)}", "event_type":
          "CHECKOUT.ORDER.APPROVED", "resource_type": "checkout-order",
          "resource": {"id": order, "status": "APPROVED",
                       "purchase_units": [{"reference_id": p["rid"],
                                           "custom_id": pid}]}}

    # a forged signature: acknowledged, never applied
    forged = paypal.sign(ev)
    forged["PAYPAL-TRANSMISSION-SIG"] = "0" * 64
    assert paypal_hook(api, paypal, ev, forged).status == 200
    # headers missing: 400 at the edge
    r = api.post("/v1/webhooks/paypal", json.dumps(ev).encode(),
                 headers={"Content-Type": "application/json"})
    assert r.status == 400
    time.sleep(2)
    assert status_of(api, pid, p["ctok"])["status"] == "requires_action"
    assert not paypal.calls(rf"/v2/checkout/orders/{order}/capture")

    for _ in range(3):
        assert paypal_hook(api, paypal, ev).status == 200
    wait_status(api, pid, p["ctok"], "succeeded")
    caps = paypal.calls(rf"/v2/checkout/orders/{order}/capture")
    assert len(caps) == 1
    assert caps[0][1]["PayPal-Request-Id"] == f"{pid}:capture"
    assert [e["type"] for e in payment_events(
        stack, pid, until="payment.succeeded")].count("payment.succeeded") == 1


def test_paypal_token_refreshed_when_expired(api, stack, paypal, worker,
                                            worker_env):
    # a worker of its own, with no token yet, in the group's place
    worker.terminate()
    paypal.expires_in = 2      # kept half of it: a new one after ~1 s
    w = PaymentWorker(worker_env)
    try:
        w.start()
        before = len(paypal.tokens)
        p = parties(api, stack)
        pid = pay(api, p, method="paypal").json()["id"]
        wait_status(api, pid, p["ctok"], "requires_action")
        time.sleep(2.5)
        q = parties(api, stack)
        qid = pay(api, q, method="paypal").json()["id"]
        wait_status(api, qid, q["ctok"], "requires_action")
        assert len(paypal.tokens) - before >= 2
    finally:
        paypal.expires_in = 3600
        w.terminate()
        worker.start()


def test_the_worker_runs_clean_under_valgrind(api, stack, stripe, paypal,
                                              worker, worker_env, tmp_path):
    """memcheck over a short scenario, in the group's place: a Stripe hold
    captured when the request completes, confirmed by its webhook and
    refunded; a PayPal order approved and captured; then SIGTERM.  No
    invalid access, no definite leak."""
    worker.terminate()
    report = tmp_path / "memcheck.log"
    w = PaymentWorker(worker_env, wrapper=memcheck.wrapper(report))
    try:
        w.start()
        p = parties(api, stack)
        pid = pay(api, p).json()["id"]
        wait_status(api, pid, p["ctok"], "requires_action", timeout=90)
        start(api, {"token": p["ptok"]}, p["rid"])
        complete(api, {"token": p["ptok"]}, p["rid"])
        wait_for(lambda: stripe.keys(pid) == [f"{pid}:create",
                                              f"{pid}:capture"],
                 timeout=90, what="the capture, under valgrind")
        pi = stack.db.payments.find_one(
            {"_id": ObjectId(pid)})["stripe_payment_intent"]
        assert webhook(api, stripe_event("payment_intent.succeeded", pid,
                                         pi)).status == 200
        wait_status(api, pid, p["ctok"], "succeeded", timeout=90)
        from authutil import login_admin
        admin = login_admin(api)["access_token"]
        assert api.post(f"/v1/payments/{pid}/refund", token=admin,
                        headers={"Idempotency-Key": f"refund-{pid}"}
                        ).status == 202
        wait_status(api, pid, p["ctok"], "refunded", timeout=90)

        q = parties(api, stack)
        qid = pay(api, q, method="paypal").json()["id"]
        wait_status(api, qid, q["ctok"], "requires_action", timeout=90)
        order = stack.db.payments.find_one(
            {"_id": ObjectId(qid)})["paypal_order_id"]
        ev = {"id": f"WH-{secrets.token_hex(6)}", "event_type":
              "CHECKOUT.ORDER.APPROVED", "resource_type": "checkout-order",
              "resource": {"id": order, "status": "APPROVED",
                           "purchase_units": [{"reference_id": q["rid"],
                                               "custom_id": qid}]}}
        assert paypal_hook(api, paypal, ev).status == 200
        wait_status(api, qid, q["ctok"], "succeeded", timeout=90)
        memcheck.check(report, w.terminate(timeout=120))
        w.check_log()
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.kill()
        worker.start()


# faults


def test_worker_killed_between_call_and_store(api, stack, stripe, worker,
                                              worker_env):
    worker.terminate()
    env = dict(worker_env)
    env["FEIRA_PAYMENT_TEST_PAUSE_MS"] = "20000"
    slow = PaymentWorker(env).start()
    again = None
    try:
        p = parties(api, stack)
        pid = pay(api, p).json()["id"]
        wait_for(lambda: f"payment intent created for payment {pid}"
                 in slow.log(), timeout=30, what="the Stripe call")
        slow.kill()                   # the intent exists; nothing stored
        assert status_of(api, pid, p["ctok"])["status"] == "pending"
        assert len(stripe.forwarded_for(pid, "create")) == 1

        again = PaymentWorker(worker_env).start()
        body = wait_status(api, pid, p["ctok"], "requires_action",
                           timeout=60)
        # the same key again: Stripe answered the first intent, no second
        creates = [c for c in stripe.calls if c[2] == f"{pid}:create"]
        assert len(creates) == 2
        assert len(stripe.forwarded_for(pid, "create")) == 1
        stored = stack.db.payments.find_one({"_id": ObjectId(pid)})
        assert body["client_secret"] == stored["client_secret"]
        evs = payment_events(stack, pid, until="payment.requires_action")
        assert [e["type"] for e in evs].count("payment.requires_action") == 1
    finally:
        if slow.proc.poll() is None:
            slow.kill()
        if again:
            again.terminate()
            again.check_log()
        worker.start()


def test_transient_stripe_errors_are_retried(api, stack, stripe, worker):
    stripe.fail_next = 2
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    keys = [c[2] for c in stripe.calls if c[2] == f"{pid}:create"]
    assert len(keys) >= 3          # two 503s, then the answer, same key
    assert len(stripe.forwarded_for(pid, "create")) == 1


def test_kafka_down_webhook_is_503_then_applied_once(api, stack, worker):
    p = parties(api, stack)
    pid = pay(api, p).json()["id"]
    wait_status(api, pid, p["ctok"], "requires_action")
    ev = stripe_event("payment_intent.succeeded", pid)

    service("stop", "kafka")
    try:
        r = webhook(api, ev)
        assert r.status == 503, r.body
    finally:
        service("start", "kafka")

    # Stripe retries: once Kafka is back it goes through, applied once
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(
        webhook(api, ev)), timeout=90, interval=1, what="webhook 200")
    webhook(api, ev)
    wait_status(api, pid, p["ctok"], "succeeded", timeout=90)
    evs = payment_events(stack, pid, until="payment.succeeded")
    assert [e["type"] for e in evs].count("payment.succeeded") == 1
