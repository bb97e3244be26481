"""Channels and events over /v1/ws: who may subscribe, events fanned out
to every subscriber whichever worker or nginx instance it is on, `since`
replays exactly what was missed, live locations reach the client of the
provider's active request only, and a token that expires or is logged out
closes the socket."""

import re
import subprocess
import threading
import time

import pytest

from feira import Nginx, request, wait_for
from rtutil import (Publisher, mint, new_id, redis_client, seed_offering,
                    seed_request, set_status, user)
from wsclient import WS


@pytest.fixture(scope="module")
def rt():
    n = Nginx()
    n.start()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    yield n
    n.stop()
    n.check_log()
    n.cleanup()


@pytest.fixture
def pub():
    return Publisher()


def subscribe(ws, channel, since=None):
    msg = {"type": "subscribe", "channel": channel}
    if since is not None:
        msg["since"] = since
    ws.send_json(msg)
    return ws.recv_json()


def events(ws, count, timeout=5):
    out = []
    for _ in range(count):
        msg = ws.recv_json(timeout=timeout)
        assert msg["type"] == "event", msg
        out.append(msg)
    return out


def status_event(request_id, status):
    return {"type": f"request.{status}", "data": {"request_id": request_id,
                                                  "to": status}}


# who may listen

def test_participants_get_events_a_stranger_gets_an_error(rt, pub):
    client, ctok = user(rt)
    provider, ptok = user(rt, "provider")
    stranger, stok = user(rt)
    rid = seed_request(client, provider, status="accepted")
    channel = f"request:{rid}"

    c = WS.connect(rt.port, ctok)
    p = WS.connect(rt.port, ptok)
    s = WS.connect(rt.port, stok)
    assert subscribe(c, channel) == {"type": "subscribed",
                                     "channel": channel, "seq": 0}
    assert subscribe(p, channel)["type"] == "subscribed"
    denied = subscribe(s, channel)
    assert denied["type"] == "error" and denied["code"] == "forbidden"
    assert denied["channel"] == channel

    assert pub.publish(channel, status_event(rid, "started")) == 1
    for ws in (c, p):
        msg = ws.recv_json()
        assert msg == {"type": "event", "channel": channel, "seq": 1,
                       "event": status_event(rid, "started")}
    assert s.silent(0.5)

    # unknown requests look the same as others' requests
    denied = subscribe(s, f"request:{new_id()}")
    assert denied["code"] == "forbidden"
    for ws in (c, p, s):
        ws.shutdown()


def test_user_channel_is_its_users_only(rt, pub):
    me, tok = user(rt)
    other, _ = user(rt)
    ws = WS.connect(rt.port, tok)
    assert subscribe(ws, f"user:{other}")["code"] == "forbidden"
    assert subscribe(ws, f"user:{me}")["type"] == "subscribed"
    assert subscribe(ws, f"user:{me}")["code"] == "already_subscribed"
    pub.publish(f"user:{me}", {"type": "payment.succeeded",
                               "data": {"amount": 1000}})
    msg = ws.recv_json()
    assert msg["event"]["type"] == "payment.succeeded"
    ws.shutdown()


def test_offered_providers_until_the_request_is_accepted(rt, pub):
    client, ctok = user(rt)
    p1, t1 = user(rt, "provider")
    p2, t2 = user(rt, "provider")
    rid = seed_request(client, offered_to=[p1, p2], status="open")
    channel = f"request:{rid}"

    w1 = WS.connect(rt.port, t1)
    assert subscribe(w1, channel)["type"] == "subscribed"

    # p2 accepts: p1 is told with the event, then loses the channel
    set_status(rid, "accepted", provider_id=p2)
    pub.publish(channel, status_event(rid, "accepted"))
    assert w1.recv_json()["event"]["type"] == "request.accepted"
    gone = w1.recv_json()
    assert gone["type"] == "error" and gone["code"] == "forbidden"
    pub.publish(channel, status_event(rid, "started"))
    assert w1.silent(0.5)

    # and may not come back; p2 may
    assert subscribe(w1, channel)["code"] == "forbidden"
    w2 = WS.connect(rt.port, t2)
    assert subscribe(w2, channel)["type"] == "subscribed"
    w1.shutdown()
    w2.shutdown()


def test_unsubscribe_stops_the_events(rt, pub):
    me, tok = user(rt)
    ws = WS.connect(rt.port, tok)
    subscribe(ws, f"user:{me}")
    ws.send_json({"type": "unsubscribe", "channel": f"user:{me}"})
    assert ws.recv_json() == {"type": "unsubscribed",
                              "channel": f"user:{me}"}
    pub.publish(f"user:{me}", {"type": "x"})
    assert ws.silent(0.5)
    ws.send_json({"type": "unsubscribe", "channel": f"user:{me}"})
    assert ws.recv_json()["code"] == "not_subscribed"
    ws.shutdown()


# since: exactly what was missed, in order, once

def test_since_replays_exactly_what_was_missed(rt, pub):
    client, tok = user(rt)
    rid = seed_request(client, status="open")
    channel = f"request:{rid}"

    ws = WS.connect(rt.port, tok)
    subscribe(ws, channel)
    for i in range(3):
        pub.publish(channel, {"type": "test", "n": i + 1})
    got = events(ws, 3)
    assert [m["seq"] for m in got] == [1, 2, 3]
    last = got[-1]["seq"]
    ws.shutdown()

    # missed while away
    for i in range(3, 7):
        pub.publish(channel, {"type": "test", "n": i + 1})

    ws = WS.connect(rt.port, tok)
    ack = subscribe(ws, channel, since=last)
    assert ack == {"type": "subscribed", "channel": channel, "seq": 7}
    got = events(ws, 4)
    assert [m["seq"] for m in got] == [4, 5, 6, 7]
    assert [m["event"]["n"] for m in got] == [4, 5, 6, 7]

    # then live, and nothing twice
    pub.publish(channel, {"type": "test", "n": 8})
    assert ws.recv_json()["seq"] == 8
    assert ws.silent(0.5)
    ws.shutdown()

    # since 0: the whole history
    ws = WS.connect(rt.port, tok)
    subscribe(ws, channel, since=0)
    assert [m["seq"] for m in events(ws, 8)] == list(range(1, 9))
    assert ws.silent(0.3)
    ws.shutdown()


def test_no_gap_no_duplicate_while_events_keep_coming(rt, pub):
    client, tok = user(rt)
    rid = seed_request(client, status="open")
    channel = f"request:{rid}"
    total = 300

    def publisher():
        p = Publisher()
        for i in range(total):
            p.publish(channel, {"type": "test", "n": i + 1})
            if i % 50 == 0:
                time.sleep(0.01)

    t = threading.Thread(target=publisher)
    t.start()
    time.sleep(0.02)
    # subscribing from 0 while the publisher runs: history, then live
    ws = WS.connect(rt.port, tok)
    ws.send_json({"type": "subscribe", "channel": channel, "since": 0})
    seqs = []
    while len(seqs) < total:
        msg = ws.recv_json(timeout=10, skip=("subscribed",))
        assert msg["type"] == "event", msg
        seqs.append(msg["seq"])
    t.join()
    assert seqs == list(range(1, total + 1))
    assert ws.silent(0.5)
    ws.shutdown()


def test_history_gap_is_said(rt):
    client, tok = user(rt)
    rid = seed_request(client, status="open")
    channel = f"request:{rid}"
    # MAXLEN ~ trims whole stream nodes (100 entries)
    small = Publisher(history=5)
    for i in range(250):
        small.publish(channel, {"type": "test", "n": i + 1})
    ws = WS.connect(rt.port, tok)
    subscribe(ws, channel, since=1)
    gap = ws.recv_json()
    assert gap["type"] == "error" and gap["code"] == "history_gap", gap
    got = []
    while True:
        msg = ws.recv_json(timeout=2)
        got.append(msg["seq"])
        if msg["seq"] == 250:
            break
    assert got == list(range(got[0], 251)) and got[0] > 2
    ws.shutdown()


def test_too_many_subscriptions(rt):
    from rtutil import TEST_WS
    n = Nginx()
    n.add_conf("rt.conf", TEST_WS, server=True)
    n.start()
    try:
        me, tok = user(n)
        ws = WS.connect(n.port, tok, path="/t/ws",
                        headers={"Origin": "https://app.feira.test"})
        rids = [seed_request(me) for _ in range(4)]
        for rid in rids[:3]:
            assert subscribe(ws, f"request:{rid}")["type"] == "subscribed"
        msg = subscribe(ws, f"request:{rids[3]}")
        assert msg["code"] == "too_many_subscriptions"
        ws.shutdown()
    finally:
        n.stop()
        n.check_log()
        n.cleanup()


# across workers and instances

def worker_of(port, nginx_port):
    """The pid of the nginx worker that holds the server side of the
    client connection from local port `port`."""
    out = subprocess.run(["ss", "-tnpH", "state", "established",
                          f"( sport = :{nginx_port} and dport = :{port} )"],
                         capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def test_every_worker_of_an_instance_delivers(nginx_factory, pub):
    n = nginx_factory(workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    me, tok = user(n)
    channel = f"user:{me}"
    clients, pids = [], set()
    for _ in range(40):
        ws = WS.connect(n.port, tok)
        subscribe(ws, channel)
        clients.append(ws)
        pids.add(worker_of(ws.sock.getsockname()[1], n.port))
        if len(pids) == 2 and len(clients) >= 6:
            break
    assert len(pids - {None}) == 2, f"one worker took every connection: {pids}"

    start = time.monotonic()
    seq = pub.publish(channel, {"type": "test.fanout"})
    for ws in clients:
        msg = ws.recv_json(timeout=2)
        assert msg["seq"] == seq and msg["event"]["type"] == "test.fanout"
    assert time.monotonic() - start < 1.0
    for ws in clients:
        ws.shutdown()


def test_an_event_caused_on_one_instance_reaches_another(nginx_factory):
    a = nginx_factory()
    b = nginx_factory()
    for n in (a, b):
        wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
                 what="/readyz 200")
    client, ctok = user(a)
    provider, ptok = user(a, "provider")
    rid = seed_request(client, provider, status="in_progress")

    c = WS.connect(a.port, ctok)
    assert subscribe(c, f"request:{rid}")["type"] == "subscribed"

    # the provider is on instance B
    p = WS.connect(b.port, ptok)
    start = time.monotonic()
    p.send_json({"type": "location", "lat": -23.5613, "lng": -46.6565})
    msg = c.recv_json(timeout=1)
    assert time.monotonic() - start < 1.0
    ev = msg["event"]
    assert ev["type"] == "provider.location"
    assert ev["data"]["request_id"] == rid
    assert ev["data"]["provider_id"] == provider
    assert abs(ev["data"]["lat"] + 23.5613) < 1e-6
    assert abs(ev["data"]["lng"] + 46.6565) < 1e-6
    c.shutdown()
    p.shutdown()


# live location

def test_location_reaches_the_client_of_the_active_request_only(rt):
    c1, t1 = user(rt)
    c2, t2 = user(rt)
    p, tp = user(rt, "provider")
    other, _ = user(rt, "provider")
    seed_offering(p, "plumbing")
    r1 = seed_request(c1, p, status="accepted")
    r2 = seed_request(c2, other, status="accepted")
    # an old, finished request of the same provider is not relayed to
    seed_request(c2, p, status="completed")

    w1 = WS.connect(rt.port, t1)
    w2 = WS.connect(rt.port, t2)
    assert subscribe(w1, f"request:{r1}")["type"] == "subscribed"
    assert subscribe(w2, f"request:{r2}")["type"] == "subscribed"

    wp = WS.connect(rt.port, tp)
    wp.send_json({"type": "location", "lat": 10.5, "lng": -20.25})
    msg = w1.recv_json(timeout=2)
    assert msg["channel"] == f"request:{r1}"
    assert msg["event"]["data"]["lat"] == 10.5
    assert msg["event"]["data"]["lng"] == -20.25

    # one a second per provider
    wp.send_json({"type": "location", "lat": 10.6, "lng": -20.25})
    err = wp.recv_json()
    assert err["type"] == "error" and err["code"] == "rate_limited"
    assert w2.silent(1.0)
    assert w1.silent(0.1)

    # the matching index
    r = redis_client()
    lng, lat = r.geopos("feira:geo:plumbing", p)[0]
    assert abs(lat - 10.5) < 1e-4 and abs(lng + 20.25) < 1e-4
    assert r.zscore("feira:seen", p) > (time.time() - 10) * 1000

    # clients have no location to send; bad values are refused
    w1.send_json({"type": "location", "lat": 1, "lng": 2})
    assert w1.recv_json()["code"] == "forbidden"
    time.sleep(1.1)
    wp.send_json({"type": "location", "lat": 91, "lng": 0})
    assert wp.recv_json()["code"] == "bad_message"
    for ws in (w1, w2, wp):
        ws.shutdown()


def test_put_location(rt):
    client, ctok = user(rt)
    p, tp = user(rt, "provider")
    rid = seed_request(client, p, status="accepted")
    w = WS.connect(rt.port, ctok)
    subscribe(w, f"request:{rid}")

    def put(body, token):
        return request(rt.port, "PUT", "/v1/providers/me/location", body=body,
                       headers={"Authorization": f"Bearer {token}"})

    r = put({"lat": 1.25, "lng": 2.5}, tp)
    assert r.status == 204, r.body
    assert w.recv_json()["event"]["data"]["lng"] == 2.5
    r = put({"lat": 1.25, "lng": 2.5}, tp)
    assert r.status == 429 and r.headers["retry-after"] == "1"
    assert put({"lat": 1, "lng": 2}, ctok).status == 403
    assert put({"lat": "1", "lng": 2}, tp).status == 400
    assert put({"lat": 1}, tp).status == 400
    assert request(rt.port, "PUT", "/v1/providers/me/location", body="x",
                   headers={"Authorization": f"Bearer {tp}",
                            "Content-Type": "text/plain"}).status == 415
    assert request(rt.port, "PUT", "/v1/providers/me/location",
                   body={"lat": 1, "lng": 2}).status == 401
    w.shutdown()


def test_a_provider_with_a_websocket_is_online(rt):
    p, tp = user(rt, "provider")
    r = redis_client()
    r.zrem("feira:seen", p)
    ws = WS.connect(rt.port, tp)
    wait_for(lambda: r.zscore("feira:seen", p), timeout=5,
             what="the provider seen")
    assert r.zscore("feira:seen", p) > (time.time() - 10) * 1000
    ws.shutdown()


# tokens of open connections

def test_an_expiring_token_closes_the_socket(nginx_factory):
    n = nginx_factory(conf="feira_auth_leeway 0s;\n")
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    me, _ = user(n)
    ws = WS.connect(n.port, mint(me, ttl=3))
    ws.send_json({"type": "subscribe", "channel": f"user:{me}"})
    # the ack, then the close (expect_close skips what comes before it)
    code, reason = ws.expect_close(timeout=10)
    assert (code, reason) == (4001, "token expired"), n.log()[-3000:]
    assert ws.expect_eof()


def test_logout_closes_the_socket(rt):
    from authutil import register
    u = register(rt)
    ws = WS.connect(rt.port, u["access_token"])
    subscribe(ws, f"user:{u['user']['id']}")
    r = rt.post("/v1/auth/logout", token=u["access_token"])
    assert r.status == 204
    start = time.monotonic()
    code, reason = ws.expect_close(timeout=5)
    assert (code, reason) == (4003, "token revoked")
    assert time.monotonic() - start < 3
    # and it cannot come back
    status, _, _, _ = WS.open_raw(rt.port, token=u["access_token"])
    assert status == 401


# Redis goes away and comes back: nothing lost

def test_subscriptions_survive_a_redis_restart(rt):
    from feira import service
    me, tok = user(rt)
    channel = f"user:{me}"
    ws = WS.connect(rt.port, tok)
    subscribe(ws, channel)
    Publisher().publish(channel, {"type": "before"})
    assert ws.recv_json()["seq"] == 1

    service("stop", "redis")
    service("start", "redis")
    pub = Publisher()
    wait_for(lambda: _loaded(pub), timeout=20, what="redis loaded")
    # published at once, maybe before the worker subscribed again
    pub.publish(channel, {"type": "after", "n": 1})
    pub.publish(channel, {"type": "after", "n": 2})
    got = [ws.recv_json(timeout=10) for _ in range(2)]
    assert [m["seq"] for m in got] == [2, 3]
    assert ws.silent(0.5)
    ws.shutdown()
    wait_for(lambda: rt.get("/readyz").status == 200, timeout=30,
             what="ready again")


def _loaded(pub):
    import redis
    try:
        return pub.r.ping()
    except (redis.exceptions.BusyLoadingError,
            redis.exceptions.ConnectionError):
        return False


def test_reload_says_going_away_and_the_old_worker_leaves(nginx_factory):
    import os
    from rtutil import Ingest
    n = nginx_factory()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    me, tok = user(n)
    provider, ptok = user(n, "provider")
    old = n.get("/healthz").json()["pid"]
    ws = WS.connect(n.port, tok)
    subscribe(ws, f"user:{me}")
    t = Ingest(n.stream_port)
    assert t.ask(f"AUTH {ptok}") == "OK"

    n.reload()
    assert ws.expect_close(timeout=10) == (1001, "server shutting down")
    assert ws.expect_eof()
    assert t.closed(timeout=10)

    def gone():
        try:
            os.kill(old, 0)
            return False
        except ProcessLookupError:
            return True

    wait_for(gone, timeout=10, what="the old worker exits")
    ws = WS.connect(n.port, tok)
    subscribe(ws, f"user:{me}")
    Publisher().publish(f"user:{me}", {"type": "after.reload"})
    assert ws.recv_json()["event"]["type"] == "after.reload"
    ws.shutdown()


@pytest.mark.parametrize("name", ["publish", "replay"])
def test_the_scripts_of_docs_are_the_modules(name):
    """docs/events.md shows (and the tests run) the scripts nginx runs."""
    import os
    from feira import ROOT
    from rtutil import docs_script
    with open(os.path.join(ROOT, "nginx-modules", "common",
                           "ngx_feira_rt.c")) as f:
        src = f.read()
    m = re.search(r"ngx_feira_rt_%s_lua\[\] =(.*?);\n" % name, src, re.S)
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    script = "".join(literals).encode().decode("unicode_escape")
    assert script == docs_script(name)


def test_killed_subscriber_connection_loses_nothing(rt):
    me, tok = user(rt)
    channel = f"user:{me}"
    ws = WS.connect(rt.port, tok)
    subscribe(ws, channel)
    pub = Publisher()
    pub.publish(channel, {"type": "n", "n": 1})
    assert ws.recv_json()["seq"] == 1
    # every pub/sub connection of Redis, nginx's included, is cut
    pub.r.client_kill_filter(_type="pubsub")
    for i in range(2, 6):
        pub.publish(channel, {"type": "n", "n": i})
    got = [ws.recv_json(timeout=10)["seq"] for _ in range(4)]
    assert got == [2, 3, 4, 5]
    assert ws.silent(0.5)
    ws.shutdown()
    assert "subscriber connection lost" in rt.log()
    assert "silent for" not in rt.log()


def test_websocket_metrics(rt, pub):
    from promtext import Metrics

    def scrape():
        r = request(rt.port, "GET", "/metrics")
        assert r.status == 200
        return Metrics(r.body.decode())

    before = scrape()
    me, tok = user(rt)
    a = WS.connect(rt.port, tok)
    b = WS.connect(rt.port, tok)
    subscribe(a, f"user:{me}")
    pub.publish(f"user:{me}", {"type": "m"})
    a.recv_json()
    m = scrape()
    assert m.get("feira_websocket_connections") \
        == before.get("feira_websocket_connections") + 2
    assert m.get("feira_websocket_connections_total") \
        >= before.get("feira_websocket_connections_total") + 2
    assert m.get("feira_websocket_messages_total", direction="in") \
        >= before.get("feira_websocket_messages_total", direction="in") + 1
    # the ack and the event
    assert m.get("feira_websocket_messages_total", direction="out") \
        >= before.get("feira_websocket_messages_total", direction="out") + 2

    # a clean close, and a client that just goes away
    a.close()
    a.expect_close()
    b.shutdown()

    def settled():
        after = scrape()
        return (after.get("feira_websocket_connections")
                == before.get("feira_websocket_connections")) and after

    after = wait_for(settled, timeout=5, what="both connections gone")
    assert after.get("feira_websocket_dropped_total") \
        == before.get("feira_websocket_dropped_total") + 1
