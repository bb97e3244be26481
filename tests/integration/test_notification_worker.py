"""The notification worker against the real test stack: events on Kafka,
users in FerretDB, e-mail into Mailpit, push and SMS into local receivers
(receivers.py), the real worker binary started and killed here."""

import base64
import datetime
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import zoneinfo

import pytest
from bson import ObjectId

import memcheck
from feira import ROOT, free_port, wait_for
from notify import Mailpit, Stack, Worker, accepted, event
from prometheus_server import Prometheus
from receivers import FcmReceiver, SmsReceiver, make_service_account


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    s.client.close()


@pytest.fixture(scope="module")
def mailpit_strict():
    m = Mailpit(n=0)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def mailpit_dedupe():
    m = Mailpit(n=1, dedupe=True)
    yield m
    m.stop()


@pytest.fixture
def mailpit(mailpit_strict):
    mailpit_strict.clear()
    return mailpit_strict


@pytest.fixture(scope="module")
def fcm_module():
    d = tempfile.mkdtemp(prefix="feira-fcm-")
    r = FcmReceiver(public_pem="").start()
    r.credentials, r.public_pem = make_service_account(d, f"{r.url}/token")
    yield r
    r.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fcm(fcm_module):
    r = fcm_module
    with r.lock:
        r.requests, r.delivered, r.duplicates = [], {}, 0
        r.fail_next, r.fail_always, r.delay = 0, False, 0.0
        r.unregistered = set()
    return r


@pytest.fixture
def sms():
    r = SmsReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def topics():
    """This test's own topics, so no test sees another's events."""
    t = f"feira.test.{secrets.token_hex(4)}"
    return {"requests": f"{t}.requests", "chat": f"{t}.chat",
            "payments": f"{t}.payments", "reviews": f"{t}.reviews",
            "notifications": f"{t}.notifications", "group": f"{t}.group"}


@pytest.fixture
def worker_factory(stack, fcm, sms, topics):
    started = []

    def make(mail, start=True, wrapper=(), **extra):
        env = dict(os.environ)
        env.update({
            "FEIRA_KAFKA_BROKERS": stack.brokers,
            "FEIRA_MONGO_URI": stack.mongo_uri,
            "FEIRA_WORKER_TOPICS": ",".join(
                topics[k] for k in ("requests", "chat", "payments",
                                    "reviews", "notifications")),
            "FEIRA_WORKER_GROUP": topics["group"],
            "FEIRA_WORKER_LISTEN": f"127.0.0.1:{free_port()}",
            "FEIRA_WORKER_BACKOFF_MS": "100",
            "FEIRA_WORKER_BACKOFF_MAX_MS": "400",
            "FEIRA_WORKER_STATS_MS": "1000",
            "FEIRA_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FEIRA_DEFERRED_POLL_MS": "200",
            "FEIRA_SMTP_URL": f"smtp://127.0.0.1:{mail.smtp_port}",
            "FEIRA_FCM_CREDENTIALS": fcm.credentials,
            "FEIRA_FCM_ENDPOINT": fcm.url,
            "FEIRA_SMS_URL": sms.url,
            "FEIRA_SMS_ACCOUNT_SID": sms.sid,
            "FEIRA_SMS_AUTH_TOKEN": "secret",
            "FEIRA_SMS_FROM": "+5511900000000",
        })
        env.update({k: str(v) for k, v in extra.items()})
        w = Worker(env, wrapper)
        started.append(w)
        return w.start() if start else w

    yield make

    for w in started:
        w.terminate()
        w.check_log()
        os.unlink(w.logfile.name)


def settle(seconds=1.5):
    """Time for a wrong extra send to show up before counting."""
    time.sleep(seconds)


def text_of(mailpit, msg):
    return mailpit.message(msg["ID"])


# ---------------------------------------------------------------------------


def test_accepted_request_one_email_one_push_no_sms(stack, mailpit, fcm, sms,
                                                    topics, worker_factory):
    provider = stack.user("Ana <b>&amp; Co", role="provider", devices=1)
    client = stack.user("Bruno", phone="+5511988887777",
                        preferences={"notifications": {"email": True,
                                                       "push": True,
                                                       "sms": False},
                                     "language": "en"},
                        devices=1)
    # absent preferences: e-mail and push on, SMS off, pt-BR
    client_pt = stack.user("Carla", phone="+5511977776666", devices=1)
    ev = accepted(client, provider)
    ev_pt = accepted(client_pt, provider, category="faxina")
    stack.produce(topics["requests"], ev)
    stack.produce(topics["requests"], ev_pt)
    stack.flush()

    w = worker_factory(mailpit)

    got = wait_for(lambda: (lambda m: m if len(m) >= 1 else None)(
        mailpit.to(client["email"])), timeout=30, what="the e-mail")
    wait_for(lambda: len(fcm.delivered) >= 2, timeout=30, what="2 pushes")
    wait_for(lambda: mailpit.to(client_pt["email"]), timeout=30,
             what="the pt-BR e-mail")
    settle()

    # exactly one e-mail, in English, with the escaped counterpart's name
    got = mailpit.to(client["email"])
    assert len(got) == 1
    assert got[0]["Subject"] == "Your request was accepted"
    assert got[0]["MessageID"] == f"{ev['id']}.{client['id']}.email@notifications.feira"
    full = mailpit.message(got[0]["ID"])
    assert "Hello Bruno," in full["Text"]
    assert "Ana <b>&amp; Co accepted your plumbing request." in full["Text"]
    assert "Ana &lt;b&gt;&amp;amp; Co accepted" in full["HTML"]
    assert "<b>" not in full["HTML"].replace("<body>", "")
    assert ev["data"]["request_id"] in full["Text"]

    # the pt-BR client gets Portuguese
    got_pt = mailpit.to(client_pt["email"])
    assert len(got_pt) == 1
    assert got_pt[0]["Subject"] == "Seu pedido foi aceito"
    assert "Olá Carla," in mailpit.message(got_pt[0]["ID"])["Text"]

    # the provider's own address got nothing
    assert mailpit.to(provider["email"]) == []

    # one push to the client's device, none to the provider's
    pushes = [r for r in fcm.requests
              if r["message"]["token"] == client["devices"][0]["token"]]
    assert len(pushes) == 1
    msg = pushes[0]["message"]
    assert msg["notification"]["title"] == "Your request was accepted"
    assert msg["data"]["event_id"] == ev["id"]
    assert pushes[0]["key"] == \
        f"{ev['id']}:{client['id']}:push:{client['devices'][0]['_id']}"
    assert not [r for r in fcm.requests
                if r["message"]["token"] == provider["devices"][0]["token"]]
    assert fcm.token_requests >= 1

    # SMS is off for both
    assert sms.requests == []

    # the inbox: each client its own, the provider none
    inbox = stack.inbox(client)
    assert [(n["event_id"], n["title"], n["read"], n["channel"])
            for n in inbox] == [(ev["id"], "Your request was accepted",
                                 False, "inapp")]
    assert [n["event_id"] for n in stack.inbox(client_pt)] == [ev_pt["id"]]
    assert stack.inbox(provider) == []

    # the worker's own endpoints
    assert w.metric("feira_worker_events_processed_total",
                    topic=topics["requests"]) == 2
    assert w.metric("feira_worker_handler_seconds_count",
                    topic=topics["requests"]) == 2
    wait_for(lambda: "feira_worker_consumer_lag{topic=\"%s\"" % topics["requests"]
             in w.metrics(), timeout=10, what="the lag gauge")
    assert w.terminate() == 0


def test_sms_when_enabled_and_who_is_told_what(stack, mailpit, fcm, sms,
                                               topics, worker_factory):
    a = stack.user("Alice", phone="+5511911112222",
                   preferences={"notifications": {"email": False,
                                                  "push": False, "sms": True},
                                "language": "en"})
    b = stack.user("Bob", role="provider", devices=1,
                   preferences={"notifications": {"email": True,
                                                  "push": True, "sms": False},
                                "language": "pt-BR"})
    rid = str(ObjectId())
    chat_to_a = event("chat.message", {
        "request_id": rid, "message_id": str(ObjectId()), "from": b["id"],
        "to": a["id"], "text": "Chego em 10 min", "recipient_online": False})
    chat_to_b = event("chat.message", {
        "request_id": rid, "message_id": str(ObjectId()), "from": a["id"],
        "to": b["id"], "text": "ok", "recipient_online": True})
    paid = event("payment.succeeded", {
        "payment_id": str(ObjectId()), "request_id": rid, "payer_id": a["id"],
        "payee_id": b["id"], "amount": 15000, "currency": "BRL", "fee": 100,
        "method": "stripe"})
    review = event("review.created", {
        "review_id": str(ObjectId()), "request_id": rid,
        "reviewer_id": a["id"], "reviewee_id": b["id"], "rating": 5,
        "comment": "Ótimo <script>"})
    stack.produce(topics["chat"], chat_to_a)
    stack.produce(topics["chat"], chat_to_b)
    stack.produce(topics["payments"], paid)
    stack.produce(topics["reviews"], review)
    stack.flush()

    worker_factory(mailpit)

    wait_for(lambda: len(sms.requests) >= 2, timeout=30, what="2 SMS")
    wait_for(lambda: len(mailpit.to(b["email"])) >= 2, timeout=30,
             what="Bob's 2 e-mails")
    settle()

    # Alice: SMS only (her preferences), for the chat and her payment
    bodies = sorted(r["form"]["Body"] for r in sms.requests)
    assert bodies == ["Bob: Chego em 10 min",
                      "Your payment of BRL 150.00 was confirmed."]
    assert all(r["form"]["To"] == "+5511911112222" for r in sms.requests)
    assert all(r["form"]["From"] == "+5511900000000" for r in sms.requests)
    assert mailpit.to(a["email"]) == []

    # Bob: online for the chat, so not told of it; payment and review
    subjects = sorted(m["Subject"] for m in mailpit.to(b["email"]))
    assert subjects == ["Pagamento recebido", "Você recebeu uma avaliação"]
    assert len(fcm.delivered) == 2

    # the inbox shows each owner only their own
    assert sorted(n["template"] for n in stack.inbox(a)) == \
        ["chat_message", "payment_succeeded_payer"]
    assert sorted(n["template"] for n in stack.inbox(b)) == \
        ["payment_succeeded_payee", "review_created"]
    review_note = [n for n in stack.inbox(b)
                   if n["template"] == "review_created"][0]
    assert review_note["body"] == "Alice deu nota 5/5: Ótimo <script>"


def test_quiet_hours_defer_until_the_window_ends(stack, mailpit, fcm, sms,
                                                 topics, worker_factory):
    zone = "America/Sao_Paulo"
    now = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
    end = now + datetime.timedelta(seconds=8)
    start = now - datetime.timedelta(minutes=30)
    user = stack.user("Dora", devices=1, preferences={
        "notifications": {"email": True, "push": True, "sms": False},
        "language": "en",
        "quiet_hours": {"start": start.strftime("%H:%M:%S"),
                        "end": end.strftime("%H:%M:%S"), "tz": zone}})
    loud = stack.user("Eve", devices=1)
    provider = stack.user("Fabio", role="provider")
    ev = accepted(user, provider)
    ev_loud = accepted(loud, provider)
    stack.produce(topics["requests"], ev)
    stack.produce(topics["requests"], ev_loud)
    stack.flush()

    worker_factory(mailpit)

    # the other user is told at once; the inbox is written at once
    wait_for(lambda: len(fcm.delivered) >= 1, timeout=30, what="a push")
    wait_for(lambda: stack.inbox(user), timeout=10, what="the inbox entry")
    assert time.time() < end.timestamp() - 1, "the test machine is too slow"
    assert [r["message"]["token"] for r in fcm.requests] == \
        [loud["devices"][0]["token"]]
    assert mailpit.to(user["email"]) == []
    statuses = {d["channel"]: d["status"]
                for d in stack.deliveries(event_id=ev["id"])}
    assert statuses == {"email": "deferred", "push": "deferred"}
    assert stack.outcomes(event_id=ev["id"]) == []

    # deferred, not dropped: both go once the window is over
    wait_for(lambda: len(fcm.delivered) == 2, timeout=30,
             what="the deferred push")
    wait_for(lambda: mailpit.to(user["email"]), timeout=10,
             what="the deferred e-mail")
    pushed = [r for r in fcm.requests
              if r["message"]["token"] == user["devices"][0]["token"]]
    assert len(pushed) == 1
    # the window ends at the whole second written in the preferences
    assert pushed[0]["at"] >= int(end.timestamp()) - 0.05
    settle()
    assert len(mailpit.to(user["email"])) == 1
    assert stack.db.notification_deferred.count_documents(
        {"event_id": ev["id"]}) == 0
    statuses = {d["channel"]: d["status"]
                for d in stack.outcomes(event_id=ev["id"])}
    assert statuses == {"email": "sent", "push": "sent"}


def test_push_failing_three_times_then_delivered_once(stack, mailpit, fcm,
                                                      sms, topics,
                                                      worker_factory):
    client = stack.user("Gil", devices=1)
    provider = stack.user("Hana", role="provider")
    fcm.fail_next = 3
    ev = accepted(client, provider)
    stack.produce(topics["requests"], ev)
    stack.flush()

    w = worker_factory(mailpit)

    wait_for(lambda: len(fcm.delivered) == 1, timeout=30,
             what="the push after 3 failures")
    settle()
    assert len(fcm.requests) == 4
    assert len(fcm.delivered) == 1 and fcm.duplicates == 0
    # the e-mail went on the first attempt and was not sent again
    assert len(mailpit.to(client["email"])) == 1
    assert w.metric("feira_worker_events_retried_total",
                    topic=topics["requests"]) == 3
    assert w.metric("feira_worker_events_processed_total",
                    topic=topics["requests"]) == 1
    assert w.metric("feira_worker_events_dead_lettered_total",
                    topic=topics["requests"]) == 0


def test_always_failing_goes_to_dlq_and_replay_delivers(stack, mailpit, fcm,
                                                        sms, topics,
                                                        worker_factory):
    client = stack.user("Iris", devices=1)
    provider = stack.user("Joao", role="provider")
    fcm.fail_always = True
    ev = accepted(client, provider)
    stack.produce(topics["requests"], ev)
    stack.produce(topics["requests"], b"{not json", key="bad")
    stack.flush()

    w = worker_factory(mailpit, FEIRA_WORKER_ATTEMPTS=3)

    wait_for(lambda: w.metric("feira_worker_events_dead_lettered_total",
                              topic=topics["requests"]) == 2,
             timeout=30, what="2 dead letters")
    assert len(fcm.requests) == 3 and not fcm.delivered
    assert len(mailpit.to(client["email"])) == 1

    dead = [m for m in stack.read_topic("feira.notifications.dlq")
            if dict(m.headers() or []).get("feira-original-topic")
            == topics["requests"].encode()]
    assert len(dead) == 2
    by_key = {m.key(): dict(m.headers()) for m in dead}
    good = by_key[ev["data"]["request_id"].encode()]
    assert b"fcm: 503" in good["feira-error"]
    assert good["feira-attempts"] == b"3"
    assert b"not a JSON object" in by_key[b"bad"]["feira-error"]
    assert by_key[b"bad"]["feira-attempts"] == b"1"

    # FCM is back; the replay re-publishes to the original topic
    fcm.fail_always = False
    r = subprocess.run(["make", "-s", "dlq-replay",
                        "TOPIC=feira.notifications.dlq", "STACK=test"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "replayed" in r.stdout

    wait_for(lambda: len(fcm.delivered) == 1, timeout=30,
             what="the push after the replay")
    settle()
    assert len(fcm.delivered) == 1
    # what had been sent is not sent again
    assert len(mailpit.to(client["email"])) == 1
    # the malformed event is dead again, nothing else happened to it
    wait_for(lambda: w.metric("feira_worker_events_dead_lettered_total",
                              topic=topics["requests"]) == 3,
             timeout=30, what="the bad event dead again")


def test_unregistered_device_is_removed(stack, mailpit, fcm, sms, topics,
                                        worker_factory):
    client = stack.user("Kai", devices=2)
    provider = stack.user("Lia", role="provider")
    gone = client["devices"][0]
    fcm.unregistered.add(gone["token"])
    ev = accepted(client, provider)
    stack.produce(topics["requests"], ev)
    stack.flush()

    w = worker_factory(mailpit)

    wait_for(lambda: stack.db.devices.count_documents({"_id": gone["_id"]})
             == 0, timeout=30, what="the device removed")
    wait_for(lambda: len(fcm.delivered) == 1, timeout=10,
             what="the push to the other device")
    settle()
    assert stack.db.devices.count_documents(
        {"_id": client["devices"][1]["_id"]}) == 1
    # a permanent failure: recorded, not retried, not dead-lettered
    assert len(fcm.requests) == 2
    failed = stack.outcomes(_id=f"{ev['id']}:{client['id']}:push:{gone['_id']}")
    assert failed[0]["status"] == "failed"
    assert "UNREGISTERED" in failed[0]["error"]
    assert w.metric("feira_worker_events_retried_total",
                    topic=topics["requests"]) == 0


def test_explicit_command(stack, mailpit, fcm, sms, topics, worker_factory):
    user = stack.user("Mia", devices=1, phone="+5511955554444")
    cmd = event("notification.send", {
        "user_id": user["id"], "template": "welcome",
        "params": {"message": "Seu cadastro está pronto."},
        "channels": ["email"]})
    stack.produce(topics["notifications"], cmd, key=user["id"])
    stack.flush()

    worker_factory(mailpit)

    got = wait_for(lambda: mailpit.to(user["email"]), timeout=30,
                   what="the welcome e-mail")
    settle()
    assert len(got) == 1
    assert got[0]["Subject"] == "Bem-vindo à Feira, Mia"
    assert "Seu cadastro está pronto." in mailpit.message(got[0]["ID"])["Text"]
    # the command named e-mail only
    assert fcm.requests == [] and sms.requests == []
    assert [n["template"] for n in stack.inbox(user)] == ["welcome"]


def test_a_real_prometheus_scrapes_the_worker(stack, mailpit, fcm, sms,
                                              topics, worker_factory):
    """The worker's /metrics as monitoring/prometheus scrapes it: processed
    events and readiness read back through Prometheus's HTTP API."""
    w = worker_factory(mailpit)
    users = [stack.user(f"Prom{i}", devices=0) for i in range(3)]
    for u in users:
        cmd = event("notification.send", {
            "user_id": u["id"], "template": "welcome",
            "params": {"message": "ok"}, "channels": ["email"]})
        stack.produce(topics["notifications"], cmd, key=u["id"])
    stack.flush()
    wait_for(lambda: w.metric("feira_worker_events_processed_total",
                              topic=topics["notifications"]) == 3,
             timeout=30, what="three events processed")

    prom = Prometheus({"feira-workers": [f"127.0.0.1:{w.port}"]}).start()
    try:
        def processed():
            r = prom.query("feira_worker_events_processed_total"
                           f'{{topic="{topics["notifications"]}"}}')
            return r and r[0][1] == 3 and r

        labels, value = wait_for(processed, timeout=60,
                                 what="the worker's counter in Prometheus")[0]
        assert labels["job"] == "feira-workers"
        assert labels["instance"] == f"127.0.0.1:{w.port}"
        ready = wait_for(lambda: prom.query("feira_worker_ready"),
                         timeout=30, what="feira_worker_ready")
        assert ready[0][1] == 1
        lag = wait_for(lambda: prom.query("feira_worker_consumer_lag"),
                       timeout=30, what="feira_worker_consumer_lag")
        assert all(v == 0 for _, v in lag)
    finally:
        prom.stop()


def test_sigterm_finishes_in_flight_work(stack, mailpit, fcm, sms, topics,
                                         worker_factory):
    provider = stack.user("Nina", role="provider")
    clients = [stack.user(f"Otto {i}", devices=1, email=False)
               for i in range(10)]
    fcm.delay = 0.5
    events = [accepted(clients[i % 10], provider) for i in range(30)]
    for e in events:
        stack.produce(topics["requests"], e)
    stack.flush()

    w = worker_factory(mailpit, FEIRA_FCM_CONCURRENCY=4)
    wait_for(lambda: len(fcm.requests) >= 4, timeout=30, what="sends begun")
    assert w.terminate() == 0
    sent_before = len(fcm.requests)
    assert len(fcm.delivered) == sent_before, "an in-flight send was cut"

    # a new worker takes up exactly what the first did not do
    fcm.delay = 0
    worker_factory(mailpit)
    wait_for(lambda: len(fcm.delivered) == 30, timeout=60,
             what="all 30 pushes")
    settle()
    assert len(fcm.requests) == 30, "something was sent twice"


def test_sigkill_mid_batch_every_notification_once(stack, mailpit_dedupe,
                                                   fcm, sms, topics,
                                                   worker_factory):
    mailpit_dedupe.clear()
    provider = stack.user("Pia", role="provider")
    clients = [stack.user(f"Quim {i}", devices=1) for i in range(20)]
    events = [accepted(clients[i % 20], provider) for i in range(200)]
    for e in events:
        stack.produce(topics["requests"], e)
    stack.flush()

    fcm.delay = 0.05
    w = worker_factory(mailpit_dedupe, FEIRA_FCM_CONCURRENCY=8,
                       FEIRA_WORKER_BATCH=50)
    wait_for(lambda: len(fcm.requests) >= 40, timeout=30, what="sends begun")
    w.kill()
    killed_at = len(fcm.requests)
    assert killed_at < 200, "the batch was over before the kill"

    fcm.delay = 0
    w2 = worker_factory(mailpit_dedupe)
    wait_for(lambda: len(fcm.delivered) == 200, timeout=90,
             what="all 200 pushes")
    wait_for(lambda: len(mailpit_dedupe.messages()) >= 200, timeout=60,
             what="all 200 e-mails")
    ev_ids = [e["id"] for e in events]
    wait_for(lambda: stack.db.notification_outcomes.count_documents(
                 {"event_id": {"$in": ev_ids}, "status": "sent"}) == 400,
             timeout=30, what="every delivery recorded sent")
    assert stack.db.notification_deliveries.count_documents(
        {"event_id": {"$in": ev_ids}}) == 400
    settle()

    # every notification delivered, none twice
    mails = mailpit_dedupe.messages()
    ids = [m["MessageID"] for m in mails]
    want = {f"{e['id']}.{e['data']['client_id']}.email@notifications.feira"
            for e in events}
    assert len(ids) == len(set(ids)) == 200
    assert set(ids) == want
    keys = {f"{e['id']}:{e['data']['client_id']}:push:"
            f"{clients[i % 20]['devices'][0]['_id']}"
            for i, e in enumerate(events)}
    assert set(fcm.delivered) == keys
    # re-sends are only those a crash can leave unrecorded: the sends that
    # were in flight at the kill, recognised by their key
    resent = len(fcm.requests) - 200
    assert resent <= 16, resent
    inbox = stack.db.notifications.count_documents(
        {"event_id": {"$in": [e["id"] for e in events]}})
    assert inbox == 200


def test_email_over_starttls(stack, fcm, sms, topics, worker_factory):
    d = tempfile.mkdtemp(prefix="feira-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    mail = Mailpit(n=3, tls=(cert, key))
    try:
        user = stack.user("Tina")
        cmd = event("notification.send", {
            "user_id": user["id"], "template": "welcome",
            "params": {"message": "TLS"}, "channels": ["email"]})
        stack.produce(topics["notifications"], cmd, key=user["id"])
        stack.flush()

        # the server refuses mail without STARTTLS; the worker must use it
        # and verify the server's certificate
        worker_factory(mail, FEIRA_SMTP_STARTTLS="require",
                       FEIRA_SMTP_CA_FILE=cert)
        got = wait_for(lambda: mail.to(user["email"]), timeout=30,
                       what="the e-mail over STARTTLS")
        assert got[0]["Subject"] == "Bem-vindo à Feira, Tina"
        # the outcome is recorded after the send (the worker's next flush)
        outcome = wait_for(lambda: stack.outcomes(event_id=cmd["id"]),
                           timeout=10, what="the outcome recorded")
        assert outcome[0]["status"] == "sent"
    finally:
        mail.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_push_rate_limit(stack, mailpit, fcm, sms, topics, worker_factory):
    provider = stack.user("Ugo", role="provider")
    clients = [stack.user(f"Vera {i}", devices=1, email=False)
               for i in range(10)]
    for c in clients:
        stack.produce(topics["requests"], accepted(c, provider))
    stack.flush()

    # 5 pushes a second, bucket of 1: 10 pushes take at least 1.8 s
    worker_factory(mailpit, FEIRA_FCM_RATE=5, FEIRA_FCM_BURST=1)
    wait_for(lambda: len(fcm.delivered) == 10, timeout=30, what="10 pushes")
    times = sorted(r["at"] for r in fcm.requests)
    assert times[-1] - times[0] >= 1.7, times
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.1, gaps


def test_the_worker_runs_clean_under_valgrind(stack, mailpit, fcm, sms,
                                              topics, worker_factory,
                                              tmp_path):
    """memcheck over a short scenario: e-mail, push and inbox for a few
    events, then SIGTERM; no invalid access, no definite leak."""
    report = tmp_path / "memcheck.log"
    w = worker_factory(mailpit, wrapper=memcheck.wrapper(report))
    users = [stack.user(f"Val{i}", devices=1) for i in range(3)]
    provider = stack.user("ValP", role="provider")
    for u in users:
        e = accepted(u, provider)
        stack.produce(topics["requests"], e, key=e["data"]["request_id"])
    stack.flush()
    wait_for(lambda: all(len(mailpit.to(u["email"])) == 1 for u in users),
             timeout=120, what="the e-mails, under valgrind")
    wait_for(lambda: len(fcm.requests) >= 3, timeout=60,
             what="the pushes, under valgrind")
    memcheck.check(report, w.terminate(timeout=120))
