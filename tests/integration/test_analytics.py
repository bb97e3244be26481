"""Analytics (issue 10): the real analytics worker consumes a seeded stream
of events from the test stack's Kafka, writes facts and daily aggregates to
FerretDB; nginx answers the provider dashboard and the marketplace summary
from them (JSON and CSV); the numbers are computed by hand below and must
come out the same after every event is delivered twice and after a
rebuild from the topics.  The dashboard page is driven in Debian's
Chromium by playwright-core (dashboard/test/page.mjs)."""

import datetime
import json
import os
import random
import secrets
import subprocess

import pytest
from bson import ObjectId

import memcheck
from authutil import login_admin, register
from feira import ROOT, Nginx, free_port, wait_for
from notify import Stack, Worker

WORKER = os.path.join(os.environ.get("FEIRA_WORKERS_DIR")
                      or os.path.join(ROOT, "build", "workers"),
                      "analytics-worker")
OUTPUT = os.path.join(ROOT, "build", "test-output")


class AnalyticsWorker(Worker):
    binary = WORKER
    name = "analytics-worker"

    def total(self, name):
        """A counter summed over its labels (0 while a worker under
        valgrind is too slow to answer: the caller's wait_for polls on)."""
        try:
            text = self.metrics()
        except OSError:
            if not self.wrapper:
                raise
            return 0.0
        return sum(float(line.rsplit(" ", 1)[1])
                   for line in text.splitlines()
                   if line.startswith(name + "{"))

    def processed(self):
        return self.total("feira_worker_events_processed_total")


def at(day, hh, mm, ss=0):
    return datetime.datetime.combine(day, datetime.time(hh, mm, ss))


def ev(type_, data, when, role, actor=None, eid=None):
    return {"id": eid or str(ObjectId()), "type": type_,
            "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": {"id": actor or str(ObjectId()), "role": role},
            "data": data}


def req(rid, client, category, provider=None, to="accepted", price=None):
    d = {"request_id": rid, "client_id": client, "category": category,
         "from": "open", "to": to}
    if provider:
        d["provider_id"] = provider
    if price:
        d["price"] = price
    return d


def pay(pid, rid, payer, payee, amount, fee, cur="BRL"):
    return {"payment_id": pid, "request_id": rid, "payer_id": payer,
            "payee_id": payee, "amount": amount, "currency": cur, "fee": fee,
            "method": "card"}


def chat(rid, frm, to):
    return {"request_id": rid, "message_id": str(ObjectId()), "from": frm,
            "to": to, "text": "oi", "recipient_online": True}


def scenario_events(P, P2, C1, C2, d1, d2):
    """(topic key, event) in the order they happen."""
    R1, R2, R3, R4 = (str(ObjectId()) for _ in range(4))
    E = []
    # day 1
    E.append(("requests", ev("request.created", req(R1, C1, "plumbing", to="open"), at(d1, 10, 0), "client", C1)))
    E.append(("requests", ev("request.offered", {"request_id": R1, "client_id": C1, "provider_ids": [P, P2]}, at(d1, 10, 1), "client", C1)))
    E.append(("requests", ev("request.created", req(R2, C2, "faxina", to="open"), at(d1, 10, 5), "client", C2)))
    E.append(("requests", ev("request.offered", {"request_id": R2, "client_id": C2, "provider_ids": [P]}, at(d1, 10, 6), "client", C2)))
    E.append(("requests", ev("request.accepted", req(R1, C1, "plumbing", P, price={"amount": 10000, "currency": "BRL"}), at(d1, 10, 3), "provider", P)))
    E.append(("requests", ev("request.created", req(R3, C1, "plumbing", to="open"), at(d1, 10, 10), "client", C1)))
    E.append(("requests", ev("request.offered", {"request_id": R3, "client_id": C1, "provider_ids": [P]}, at(d1, 10, 11), "client", C1)))
    E.append(("requests", ev("request.accepted", req(R2, C2, "faxina", P), at(d1, 10, 16), "provider", P)))
    # chat of R1: the client first, the provider answers 5 minutes later
    E.append(("chat", ev("chat.message", chat(R1, C1, P), at(d1, 10, 20), "client", C1)))
    E.append(("chat", ev("chat.message", chat(R1, P, C1), at(d1, 10, 25), "provider", P)))
    E.append(("chat", ev("chat.message", chat(R1, P, C1), at(d1, 10, 26), "provider", P)))
    # chat of R2: the provider writes first: no response time
    E.append(("chat", ev("chat.message", chat(R2, P, C2), at(d1, 10, 30), "provider", P)))
    E.append(("chat", ev("chat.message", chat(R2, C2, P), at(d1, 10, 31), "client", C2)))
    E.append(("chat", ev("chat.message", chat(R2, P, C2), at(d1, 10, 40), "provider", P)))
    E.append(("requests", ev("request.started", req(R1, C1, "plumbing", P, to="in_progress"), at(d1, 11, 0), "provider", P)))
    E.append(("requests", ev("request.completed", req(R1, C1, "plumbing", P, to="completed"), at(d1, 12, 0), "provider", P)))
    PAY1 = str(ObjectId())
    E.append(("payments", ev("payment.pending", pay(PAY1, R1, C1, P, 10000, 1500), at(d1, 12, 4), "client", C1)))
    E.append(("payments", ev("payment.succeeded", pay(PAY1, R1, C1, P, 10000, 1500), at(d1, 12, 5), "client", C1)))
    E.append(("reviews", ev("review.created", {"review_id": str(ObjectId()), "request_id": R1, "reviewer_id": C1, "reviewee_id": P, "rating": 5, "comment": "ok"}, at(d1, 13, 0), "client", C1)))
    E.append(("requests", ev("request.cancelled", req(R3, C1, "plumbing", to="cancelled"), at(d1, 14, 0), "client", C1)))
    # day 2
    R4c = "plumbing"
    E.append(("requests", ev("request.created", req(R4, C2, R4c, to="open"), at(d2, 9, 0), "client", C2)))
    E.append(("requests", ev("request.offered", {"request_id": R4, "client_id": C2, "provider_ids": [P]}, at(d2, 9, 1), "client", C2)))
    E.append(("requests", ev("request.accepted", req(R4, C2, R4c, P), at(d2, 9, 16), "provider", P)))
    E.append(("chat", ev("chat.message", chat(R4, C2, P), at(d2, 9, 12), "client", C2)))
    E.append(("chat", ev("chat.message", chat(R4, P, C2), at(d2, 9, 14), "provider", P)))
    E.append(("requests", ev("request.cancelled", req(R2, C2, "faxina", P, to="cancelled"), at(d2, 10, 0), "provider", P)))
    E.append(("requests", ev("request.completed", req(R4, C2, R4c, P, to="completed"), at(d2, 11, 0), "provider", P)))
    E.append(("payments", ev("payment.succeeded", pay(str(ObjectId()), R4, C2, P, 20000, 3000), at(d2, 11, 5), "client", C2)))
    E.append(("payments", ev("payment.succeeded", pay(str(ObjectId()), R4, C2, P, 5000, 500, "USD"), at(d2, 11, 6), "client", C2)))
    E.append(("payments", ev("payment.refunded", pay(PAY1, R1, C1, P, 10000, 1500), at(d2, 12, 0), "client", C1)))
    E.append(("reviews", ev("review.created", {"review_id": str(ObjectId()), "request_id": R4, "reviewer_id": C2, "reviewee_id": P, "rating": 3, "comment": ""}, at(d2, 13, 0), "client", C2)))
    # the provider's review of the client is no rating of a provider
    E.append(("reviews", ev("review.created", {"review_id": str(ObjectId()), "request_id": R4, "reviewer_id": P, "reviewee_id": C2, "rating": 4, "comment": ""}, at(d2, 13, 5), "provider", P)))
    return E


def key_of(event):
    d = event["data"]
    return d.get("payment_id") or d.get("request_id") or "k"


class Scenario:
    pass


@pytest.fixture(scope="module")
def scenario():
    s = Scenario()
    s.stack = Stack()
    s.nginx = Nginx(workers=1).start()
    wait_for(lambda: s.nginx.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    s.admin = login_admin(s.nginx)["access_token"]
    s.provider = register(s.nginx, role="provider", name="Ana Prestadora")
    s.other = register(s.nginx, role="provider")
    s.client = register(s.nginx, role="client")
    P, P2 = s.provider["user"]["id"], s.other["user"]["id"]
    C1, C2 = s.client["user"]["id"], str(ObjectId())
    # a period of its own, far from any other run's data
    s.d1 = datetime.date(2031, 1, 1) + datetime.timedelta(
        days=random.randrange(0, 3000))
    s.d2 = s.d1 + datetime.timedelta(days=1)
    s.P, s.P2, s.C1, s.C2 = P, P2, C1, C2
    t = f"feira.test.{secrets.token_hex(4)}"
    s.topics = {k: f"{t}.{k}" for k in ("requests", "chat", "payments",
                                        "reviews")}
    s.events = scenario_events(P, P2, C1, C2, s.d1, s.d2)
    # one event that is not what docs/events.md says: dead-lettered
    s.stack.producer.produce(s.topics["requests"], key="x",
                             value=json.dumps({"id": "nope", "type": "request.created"}))
    s.produce_all()  # noqa: defined below
    yield s
    for w in getattr(s, "workers", []):
        w.terminate()
        w.check_log()
        os.unlink(w.logfile.name)
    s.nginx.stop()
    s.nginx.check_log()
    s.nginx.cleanup()
    s.stack.client.close()


def _produce_all(self):
    for topic, e in self.events:
        self.stack.produce(self.topics[topic], e, key=key_of(e))
    self.stack.flush()


def _worker_env(self):
    env = dict(os.environ)
    env.update({
        "FEIRA_KAFKA_BROKERS": self.stack.brokers,
        "FEIRA_MONGO_URI": self.stack.mongo_uri,
        "FEIRA_WORKER_TOPICS": ",".join(self.topics.values()),
        "FEIRA_WORKER_GROUP": self.topics["requests"] + ".group",
        "FEIRA_WORKER_LISTEN": f"127.0.0.1:{free_port()}",
        "FEIRA_WORKER_STATS_MS": "1000",
        "FEIRA_WORKER_BACKOFF_MS": "100",
        "FEIRA_KAFKA_SESSION_TIMEOUT_MS": "6000",
    })
    return env


def _start_worker(self):
    w = AnalyticsWorker(self.worker_env()).start()
    self.workers = getattr(self, "workers", []) + [w]
    return w


Scenario.produce_all = _produce_all
Scenario.worker_env = _worker_env
Scenario.start_worker = _start_worker


@pytest.fixture(scope="module")
def seeded(scenario):
    s = scenario
    s.worker = s.start_worker()
    n = len(s.events)
    wait_for(lambda: s.worker.processed() >= n, timeout=90,
             what=f"{n} events processed")
    try:
        wait_for(lambda: s.worker.total(
                     "feira_worker_events_dead_lettered_total") >= 1,
                 timeout=60, what="the bad event dead-lettered")
    except AssertionError:
        raise AssertionError(s.worker.metrics() + s.worker.log()[-3000:])
    s.range = f"from={s.d1 - datetime.timedelta(days=1)}&to={s.d2 + datetime.timedelta(days=1)}"
    return s


def dashboard(s, token=None, query=None, provider=None, headers=None):
    return s.nginx.get(f"/v1/providers/{provider or s.P}/dashboard?"
                       f"{query or s.range}", token=token or s.admin,
                       headers=dict(headers or {}))


def summary(s, token=None, query=None, headers=None):
    return s.nginx.get(f"/v1/admin/reports/summary?{query or s.range}",
                       token=token or s.admin, headers=dict(headers or {}))


def facts_count(s):
    return s.stack.db.analytics_facts.count_documents(
        {"day": {"$in": [str(s.d1), str(s.d2)]}})


# ---------------------------------------------------------------------------
# hand-computed answers of the scenario


def check_dashboard(s, body):
    assert body["provider_id"] == s.P
    days = body["days"]
    assert [d["day"] for d in days] == [
        str(s.d1 - datetime.timedelta(days=1)), str(s.d1), str(s.d2),
        str(s.d2 + datetime.timedelta(days=1))]
    empty, d1, d2, empty2 = days
    for e in (empty, empty2):
        assert e["offers"] == 0 and e["accepted"] == 0
        assert e["acceptance_rate"] is None and e["rating_avg"] is None
        assert e["earnings"] == {}
        assert e["offer_to_accept_ms"] == {"count": 0, "median": None, "p90": None}

    # day 1: offers R1, R2, R3; accepted R1 (2 min), R2 (10 min); R1 done
    assert (d1["offers"], d1["accepted"], d1["completed"], d1["cancelled"]) == (3, 2, 1, 0)
    assert d1["acceptance_rate"] == pytest.approx(2 / 3)
    assert d1["offer_to_accept_ms"] == {"count": 2, "median": 120000, "p90": 600000}
    # R1: the client wrote 10:20, the provider answered 10:25
    assert d1["first_response_ms"] == {"count": 1, "median": 300000, "p90": 300000}
    assert d1["earnings"] == {"BRL": {"gross": 10000, "net": 8500}}
    assert (d1["rating_count"], d1["rating_avg"]) == (1, 5.0)

    # day 2: offer R4, accepted 15 min later; R2 cancelled by the
    # provider; a BRL and a USD payment; the day-1 payment refunded
    assert (d2["offers"], d2["accepted"], d2["completed"], d2["cancelled"]) == (1, 1, 1, 1)
    assert d2["acceptance_rate"] == 1.0
    assert d2["offer_to_accept_ms"] == {"count": 1, "median": 900000, "p90": 900000}
    assert d2["first_response_ms"] == {"count": 1, "median": 120000, "p90": 120000}
    assert d2["earnings"] == {"BRL": {"gross": 10000, "net": 8500},
                              "USD": {"gross": 5000, "net": 4500}}
    assert (d2["rating_count"], d2["rating_avg"]) == (1, 3.0)

    t = body["totals"]
    assert (t["offers"], t["accepted"], t["completed"], t["cancelled"]) == (4, 3, 2, 1)
    assert t["acceptance_rate"] == 0.75
    # nearest rank of [2, 10, 15] min: median 10 min, p90 15 min
    assert t["offer_to_accept_ms"] == {"count": 3, "median": 600000, "p90": 900000}
    assert t["first_response_ms"] == {"count": 2, "median": 120000, "p90": 300000}
    assert t["earnings"] == {"BRL": {"gross": 20000, "net": 17000},
                             "USD": {"gross": 5000, "net": 4500}}
    assert (t["rating_count"], t["rating_sum"], t["rating_avg"]) == (2, 8, 4.0)


def check_summary(s, body):
    days = {d["day"]: d for d in body["days"]}
    assert len(days) == 4
    d1, d2 = days[str(s.d1)], days[str(s.d2)]
    assert d1["requests_created"] == 3
    assert d1["requests_by_category"] == {"plumbing": 2, "faxina": 1}
    assert (d1["accepted"], d1["completed"], d1["cancelled"], d1["expired"]) == (2, 1, 1, 0)
    assert d1["fill_rate"] == pytest.approx(2 / 3)
    assert d1["gmv"] == {"BRL": 10000} and d1["fees"] == {"BRL": 1500}
    assert d1["payments"] == 1
    assert (d1["active_clients"], d1["active_providers"]) == (2, 1)

    assert d2["requests_created"] == 1
    assert d2["requests_by_category"] == {"plumbing": 1}
    assert (d2["accepted"], d2["completed"], d2["cancelled"]) == (1, 1, 1)
    assert d2["fill_rate"] == 1.0
    assert d2["gmv"] == {"BRL": 10000, "USD": 5000}
    assert d2["fees"] == {"BRL": 1500, "USD": 500}
    assert d2["payments"] == 2
    # C2 (requests, payments) and C1 (the refund)
    assert (d2["active_clients"], d2["active_providers"]) == (2, 1)

    t = body["totals"]
    assert t["requests_created"] == 4
    assert t["requests_by_category"] == {"plumbing": 3, "faxina": 1}
    assert (t["accepted"], t["completed"], t["cancelled"]) == (3, 2, 2)
    assert t["fill_rate"] == 0.75
    assert t["gmv"] == {"BRL": 20000, "USD": 5000}
    assert t["fees"] == {"BRL": 3000, "USD": 500}
    assert t["payments"] == 3
    # distinct over the range, not the sum of the days
    assert (t["active_clients"], t["active_providers"]) == (2, 1)


# ---------------------------------------------------------------------------


def test_provider_dashboard_has_the_hand_computed_numbers(seeded):
    s = seeded
    r = dashboard(s, token=s.provider["access_token"])
    assert r.status == 200, r.body
    assert r.headers["content-type"] == "application/json"
    check_dashboard(s, r.json())
    # the admin sees the same
    assert dashboard(s).json() == r.json()
    # the other provider: offered R1 only
    other = dashboard(s, provider=s.P2).json()
    assert other["totals"]["offers"] == 1
    assert other["totals"]["accepted"] == 0
    assert other["totals"]["acceptance_rate"] == 0.0


def test_marketplace_summary_has_the_hand_computed_numbers(seeded):
    r = summary(seeded)
    assert r.status == 200, r.body
    check_summary(seeded, r.json())


def business_counters(s):
    """{(metric, category): value} of the worker's request counters."""
    out = {}
    for line in s.worker.metrics().splitlines():
        if line.startswith("feira_requests_"):
            name, rest = line.split("{", 1)
            cat = rest.split('category="', 1)[1].split('"', 1)[0]
            out[(name, cat)] = float(rest.rsplit(" ", 1)[1])
    return out


def expected_counters(s):
    want = {}
    for _, e in s.events:
        kind = e["type"].split(".", 1)
        cat = (e.get("data") or {}).get("category")
        if kind[0] != "request" or cat is None or kind[1] not in (
                "created", "accepted", "completed", "cancelled"):
            continue
        key = (f"feira_requests_{kind[1]}_total", cat)
        want[key] = want.get(key, 0) + 1
    return want


def test_business_counters_count_each_request_event_once(seeded):
    """The business dashboard's feira_requests_*_total{category}, from the
    facts this worker inserted (docs/metrics.md)."""
    want = expected_counters(seeded)
    assert want
    assert business_counters(seeded) == want


def test_an_aggregate_from_more_facts_is_never_replaced_by_one_from_fewer(
        seeded):
    """What a concurrent replica that counted more facts stored stays: the
    replace is conditional on the count (docs/events.md, "Analytics")."""
    s = seeded
    day = s.d2 + datetime.timedelta(days=5)
    X, Y = str(ObjectId()), str(ObjectId())
    s.stack.db.analytics_provider_daily.insert_one(
        {"_id": f"p:{X}:{day}", "provider_id": X, "day": str(day),
         "facts": 1000, "offers": 999})
    n = s.worker.processed()
    retried = s.worker.total("feira_worker_events_retried_total")
    e = ev("request.offered", {"request_id": str(ObjectId()),
                               "client_id": s.C2, "provider_ids": [X, Y]},
           at(day, 8, 0), "client", s.C2)
    s.stack.produce(s.topics["requests"], e, key=e["data"]["request_id"])
    s.stack.flush()
    wait_for(lambda: s.worker.processed() >= n + 1, timeout=60,
             what="the offer processed")
    q = f"from={day}&to={day}"
    assert dashboard(s, provider=X, query=q).json()["totals"]["offers"] == 999
    assert dashboard(s, provider=Y, query=q).json()["totals"]["offers"] == 1
    assert s.worker.total("feira_worker_events_retried_total") == retried


def test_csv_with_accept_text_csv(seeded):
    s = seeded
    r = dashboard(s, token=s.provider["access_token"],
                  headers={"Accept": "text/csv"})
    assert r.status == 200, r.body
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "Accept" in r.headers["vary"]
    lines = r.body.decode().split("\r\n")
    assert lines[-1] == ""
    head = lines[0].split(",")
    assert head[:6] == ["day", "offers", "accepted", "completed", "cancelled",
                        "acceptance_rate"]
    assert head[-4:] == ["gross_BRL", "net_BRL", "gross_USD", "net_USD"]
    rows = {l.split(",")[0]: dict(zip(head, l.split(","))) for l in lines[1:-1]}
    assert len(rows) == 5
    d1 = rows[str(s.d1)]
    assert (d1["offers"], d1["accepted"], d1["acceptance_rate"]) == ("3", "2", "0.6667")
    assert (d1["gross_BRL"], d1["net_BRL"], d1["gross_USD"]) == ("10000", "8500", "0")
    total = rows["total"]
    assert (total["offers"], total["offer_to_accept_median_ms"],
            total["offer_to_accept_p90_ms"], total["rating_avg"]) == \
        ("4", "600000", "900000", "4.0000")
    empty = rows[str(s.d1 - datetime.timedelta(days=1))]
    assert empty["acceptance_rate"] == "" and empty["offers"] == "0"

    r = summary(s, headers={"Accept": "text/csv"})
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.body.decode().split("\r\n")
    head = lines[0].split(",")
    rows = {l.split(",")[0]: dict(zip(head, l.split(","))) for l in lines[1:-1]}
    assert rows["total"]["requests_created"] == "4"
    assert rows["total"]["category_plumbing"] == "3"
    assert rows["total"]["gmv_USD"] == "5000"
    assert rows[str(s.d2)]["fill_rate"] == "1.0000"


def test_access_rules(seeded):
    s = seeded
    # another provider, a client: 403; nobody: 401
    assert dashboard(s, token=s.other["access_token"]).status == 403
    r = dashboard(s, token=s.client["access_token"])
    assert r.status == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert s.nginx.get(f"/v1/providers/{s.P}/dashboard").status == 401
    # the other provider's own dashboard is theirs
    assert dashboard(s, token=s.other["access_token"], provider=s.P2).status == 200
    # the summary is for admins only
    assert summary(s, token=s.provider["access_token"]).status == 403
    assert summary(s, token=s.client["access_token"]).status == 403
    assert s.nginx.get("/v1/admin/reports/summary").status == 401
    # not an id
    assert dashboard(s, provider="me").status == 404
    assert dashboard(s, provider="x" * 24).status == 404
    # read-only
    r = s.nginx.post(f"/v1/providers/{s.P}/dashboard", {}, token=s.admin)
    assert r.status == 405


@pytest.mark.parametrize("query,field", [
    ("from=2026-13-01&to=2026-12-31", "from"),
    ("from=2026-02-30&to=2026-03-01", "from"),
    ("from=2026-01-01&to=yesterday", "to"),
    ("from=2026-1-1&to=2026-01-02", "from"),
    ("from=%7B%22%24ne%22%3Anull%7D&to=2026-01-02", "from"),
    ("from=2026-03-02&to=2026-03-01", "from"),
    ("from=2024-01-01&to=2026-01-01", "to"),
])
def test_bad_ranges_are_400_problems(seeded, query, field):
    for r in (dashboard(seeded, query=query), summary(seeded, query=query)):
        assert r.status == 400, r.body
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == [field]


def test_default_range_is_the_last_30_days(seeded):
    body = dashboard(seeded, query="x=1").json()
    assert len(body["days"]) == 30
    assert body["to"] == datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    # the default start before 1970 starts at 1970-01-01
    body = dashboard(seeded, query="to=2000-01-01").json()
    assert (body["from"], len(body["days"])) == ("1999-12-03", 30)
    body = summary(seeded, query="to=1970-01-05").json()
    assert (body["from"], len(body["days"])) == ("1970-01-01", 5)
    assert summary(seeded, query="to=1969-12-31").status == 400
    # exactly 366 days is allowed
    r = summary(seeded, query="from=2031-01-01&to=2032-01-01")
    assert r.status == 200 and len(r.json()["days"]) == 366


def test_every_event_delivered_twice_changes_nothing(seeded):
    s = seeded
    before_d, before_s = dashboard(s).json(), summary(s).json()
    facts = facts_count(s)
    assert facts > 0
    n = s.worker.processed()
    s.produce_all()
    wait_for(lambda: s.worker.processed() >= n + len(s.events), timeout=90,
             what="the duplicates processed")
    assert facts_count(s) == facts
    # redelivered: the business counters do not move either
    assert business_counters(s) == expected_counters(s)
    after_d = dashboard(s).json()
    assert after_d == before_d
    check_dashboard(s, after_d)
    assert summary(s).json() == before_s


def test_a_crash_midway_then_a_restart_changes_nothing(seeded):
    """SIGKILL while a third delivery of every event is handled: the next
    worker of the group gets again whatever was not committed."""
    s = seeded
    before_d, before_s = dashboard(s).json(), summary(s).json()
    facts = facts_count(s)
    n = s.worker.processed()
    s.produce_all()
    wait_for(lambda: s.worker.processed() >= n + 5, timeout=60,
             what="some of the third delivery processed")
    s.worker.kill()
    s.worker = s.start_worker()

    def caught_up():
        # every partition holding events reports its lag (stored offsets)
        lags = [float(line.rsplit(" ", 1)[1])
                for line in s.worker.metrics().splitlines()
                if line.startswith("feira_worker_consumer_lag{")]
        return s.worker.processed() > 0 and len(lags) >= 4 and not any(lags)

    wait_for(caught_up, timeout=90, what="the new worker caught up")
    assert facts_count(s) == facts
    assert dashboard(s).json() == before_d
    assert summary(s).json() == before_s


def test_the_worker_runs_clean_under_valgrind(scenario, tmp_path):
    """memcheck over the scenario's events, on topics, a group, parties
    and days of its own (the numbers above are not touched), one not
    valid among them; then SIGTERM.  No invalid access, no definite
    leak."""
    s = scenario
    t = f"feira.test.{secrets.token_hex(4)}"
    topics = {k: f"{t}.{k}" for k in s.topics}
    d1 = datetime.date(2040, 1, 1) + datetime.timedelta(
        days=random.randrange(0, 3000))
    events = scenario_events(*(str(ObjectId()) for _ in range(4)), d1,
                             d1 + datetime.timedelta(days=1))
    s.stack.producer.produce(topics["requests"], key="x",
                             value=b'{"id": "nope"}')
    for topic, e in events:
        s.stack.produce(topics[topic], e, key=key_of(e))
    s.stack.flush()

    env = dict(s.worker_env(), FEIRA_WORKER_TOPICS=",".join(topics.values()),
               FEIRA_WORKER_GROUP=f"{t}.group")
    report = tmp_path / "memcheck.log"
    w = AnalyticsWorker(env, wrapper=memcheck.wrapper(report))
    try:
        w.start()
        wait_for(lambda: w.processed() >= len(events), timeout=120,
                 what=f"{len(events)} events processed, under valgrind")
        # its retries back off first, at valgrind's pace
        wait_for(lambda: w.total("feira_worker_events_dead_lettered_total")
                 >= 1, timeout=180, what="the bad event dead-lettered")
        assert s.stack.db.analytics_facts.count_documents(
            {"day": {"$in": [str(d1)]}}) > 0
        memcheck.check(report, w.terminate(timeout=120))
        w.check_log()
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.kill()
        os.unlink(w.logfile.name)


def test_dashboard_page_in_chromium(seeded):
    s = seeded
    # nginx serves the page and the chart library with their types
    for path, ctype in (("/dashboard/", "text/html"),
                        ("/dashboard/app.js", "application/javascript"),
                        ("/dashboard/style.css", "text/css"),
                        ("/dashboard/vendor/chart.umd.js",
                         "application/javascript")):
        r = s.nginx.get(path)
        assert r.status == 200, path
        assert r.headers["content-type"].startswith(ctype), (path, r.headers)
    assert b"Chart" in s.nginx.get("/dashboard/vendor/chart.umd.js").body
    page = s.nginx.get("/dashboard/").body.decode()
    assert "http://" not in page and "https://" not in page

    os.makedirs(OUTPUT, exist_ok=True)
    shot = os.path.join(OUTPUT, "dashboard.png")
    if os.path.exists(shot):
        os.unlink(shot)
    env = dict(os.environ, FEIRA_URL=f"http://127.0.0.1:{s.nginx.port}",
               FEIRA_EMAIL=s.provider["email"],
               FEIRA_PASSWORD=s.provider["password"],
               FEIRA_FROM=str(s.d1 - datetime.timedelta(days=1)),
               FEIRA_TO=str(s.d2 + datetime.timedelta(days=1)),
               FEIRA_SCREENSHOT=shot)
    out = subprocess.run(["node", "test/page.mjs"],
                         cwd=os.path.join(ROOT, "dashboard"), env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["problems"] == []
    assert shown["external"] == []
    assert shown["chartLib"].startswith("4.")

    days = [str(s.d1 - datetime.timedelta(days=1)), str(s.d1), str(s.d2),
            str(s.d2 + datetime.timedelta(days=1))]
    charts = shown["charts"]
    assert set(charts) == {"jobs", "earnings", "acceptance", "rating"}
    for c in charts.values():
        assert c["labels"] == days
        assert c["painted"] and c["width"] > 100 and c["height"] > 50
    jobs = {d["label"]: d["data"] for d in charts["jobs"]["datasets"]}
    assert jobs == {"Offers": [0, 3, 1, 0], "Accepted": [0, 2, 1, 0],
                    "Completed": [0, 1, 1, 0], "Cancelled": [0, 0, 1, 0]}
    money = {d["label"]: d["data"] for d in charts["earnings"]["datasets"]}
    assert money == {"Gross BRL": [0, 100, 100, 0], "Net BRL": [0, 85, 85, 0],
                     "Gross USD": [0, 0, 50, 0], "Net USD": [0, 0, 45, 0]}
    rate = charts["acceptance"]["datasets"][0]["data"]
    assert rate[0] is None and rate[3] is None
    assert rate[1] == pytest.approx(200 / 3) and rate[2] == 100
    rating = {d["label"]: d["data"] for d in charts["rating"]["datasets"]}
    assert rating["Average of the day"] == [None, 5, 3, None]
    assert rating["Average so far"] == [None, 5, 4, 4]
    assert shown["totals"]["Acceptance rate"] == "75.0 %"
    assert shown["totals"]["Rating"] == "4.00 (2)"
    assert shown["totals"]["Gross BRL"] == "BRL 200.00"
    assert os.path.getsize(shot) > 10000


def test_rebuild_from_the_topics_gives_the_same_numbers(seeded, tmp_path):
    s = seeded
    before_d, before_s = dashboard(s).json(), summary(s).json()
    facts = facts_count(s)
    assert s.worker.terminate() == 0
    # the aggregates are gone before the rebuild starts over
    s.stack.db.analytics_provider_daily.delete_many({"provider_id": s.P})
    assert dashboard(s).json()["totals"]["offers"] == 0

    # under memcheck: the rebuild's own path runs clean too
    report = tmp_path / "memcheck.log"
    out = subprocess.run(memcheck.wrapper(report)
                         + [memcheck.plain(WORKER), "--rebuild"],
                         env=s.worker_env(), capture_output=True, text=True,
                         timeout=300)
    memcheck.check(report, out.returncode)
    assert "rebuild: done" in out.stderr
    assert "1 not valid" in out.stderr

    assert facts_count(s) == facts
    after_d = dashboard(s).json()
    check_dashboard(s, after_d)
    assert after_d == before_d
    assert summary(s).json() == before_s


def test_max_days_is_a_checked_directive(nginx_factory):
    n = Nginx()
    try:
        n.add_conf("analytics.conf", "location = /v1/x { feira_auth_require; "
                   "feira_analytics_summary; feira_analytics_max_days 0; }",
                   server=True)
        r = n.test_config()
        assert r.returncode != 0
        assert "value must be between 1 and 3660" in r.stderr
    finally:
        n.cleanup()

    n = nginx_factory(server_conf="location = /v1/week { feira_auth_require; "
                      "feira_analytics_summary; feira_analytics_max_days 7; }")
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    admin = login_admin(n)["access_token"]
    r = n.get("/v1/week?from=2031-01-01&to=2031-01-08", token=admin)
    assert r.status == 400
    assert r.json()["errors"][0]["field"] == "to"
    r = n.get("/v1/week?from=2031-01-01&to=2031-01-07", token=admin)
    assert r.status == 200 and len(r.json()["days"]) == 7
    # without from: the last 7 days, not 30
    assert len(n.get("/v1/week?to=2031-01-07", token=admin).json()["days"]) == 7
