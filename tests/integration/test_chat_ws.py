"""Chat over the WebSocket: two real clients on two nginx instances (one
Redis) chat, see each other typing (rate-limited) and read; messages sent
over HTTP arrive live; the other offered providers never see a pair that
is not theirs; strangers and bad messages get error frames and store
nothing; recipient_online says whether the recipient was connected."""

import time

import pytest
from bson import ObjectId

from chatutil import (ChatTopic, cmid, forget_messages, new_request, send,
                      stored, user)
from feira import Nginx, wait_for
from wsclient import WS


@pytest.fixture(autouse=True)
def _forget_messages():
    yield
    forget_messages()


def start():
    n = Nginx(workers=2)
    n.start()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    return n


@pytest.fixture(scope="module")
def two():
    a, b = start(), start()
    yield a, b
    for n in (a, b):
        n.stop()
        n.check_log()
        n.cleanup()


def connect(n, token, channel=None):
    ws = WS.connect(n.port, token)
    if channel:
        ws.send_json({"type": "subscribe", "channel": channel})
        msg = ws.recv_json()
        assert msg["type"] == "subscribed", msg
    return ws


def next_event(ws, type_, timeout=5):
    """The next event of this type (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = ws.recv_json(timeout=max(deadline - time.monotonic(), 0.01))
        if msg["type"] == "event" and msg["event"]["type"] == type_:
            return msg["event"]
        assert msg["type"] == "event", msg


def reply(ws, type_, timeout=5):
    """The next frame that is not an event."""
    deadline = time.monotonic() + timeout
    while True:
        msg = ws.recv_json(timeout=max(deadline - time.monotonic(), 0.01))
        if msg["type"] != "event":
            assert msg["type"] == type_, msg
            return msg


def nothing(ws, type_, seconds=1.0):
    """No event of this type within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = ws.recv_json(timeout=deadline - time.monotonic())
        except Exception:
            return
        assert not (msg["type"] == "event"
                    and msg["event"]["type"] == type_), msg


def test_two_clients_chat_through_two_instances(two):
    a, b = two
    cid, ctok = user(a, "client")
    pid, ptok = user(a, "provider")
    rid = new_request(a, (cid, ctok), accepted_by=(pid, ptok))
    chan = f"request:{rid}"
    topic = ChatTopic()

    cws = connect(a, ctok, chan)
    pws = connect(b, ptok, chan)
    try:
        # client → provider over the WebSocket of instance a
        cws.send_json({"type": "chat", "request_id": rid,
                       "text": "Oi <b>!</b> ☃", "client_msg_id": "ws-1"})
        ack = reply(cws, "chat.ack")
        m = ack["message"]
        assert ack["client_msg_id"] == "ws-1" and ack["replayed"] is False
        assert (m["from"], m["to"], m["text"]) == (cid, pid, "Oi <b>!</b> ☃")

        ev = next_event(pws, "chat.message")
        assert ev["id"] == m["id"]
        assert ev["data"]["text"] == "Oi <b>!</b> ☃"
        assert ev["data"]["from"] == cid and ev["data"]["to"] == pid
        assert ev["actor"] == {"id": cid, "role": "client"}
        # the sender's other devices see it too (same channel)
        assert next_event(cws, "chat.message")["id"] == m["id"]

        # a retry over the WebSocket is the same message, not a copy
        cws.send_json({"type": "chat", "request_id": rid,
                       "text": "Oi <b>!</b> ☃", "client_msg_id": "ws-1"})
        again = reply(cws, "chat.ack")
        assert again["replayed"] is True
        assert again["message"]["id"] == m["id"]
        assert len(stored(rid)) == 1

        # provider → client over HTTP on instance a: live on b's socket
        r = send(a, rid, ptok, "a caminho")
        assert r.status == 201
        ev = next_event(cws, "chat.message")
        assert ev["data"]["message_id"] == r.json()["id"]
        assert ev["data"]["recipient_online"] is True

        # both were connected: recipient_online on Kafka says so
        evs = topic.events(lambda ev: sum(e["type"] == "chat.message"
                                          and e["data"]["request_id"] == rid
                                          for _, e in ev) >= 2)
        mine = [e for _, e in evs if e["data"]["request_id"] == rid]
        assert [e["id"] for e in mine] == [m["id"], r.json()["id"]]
        assert all(e["data"]["recipient_online"] for e in mine)

        # typing: delivered, not stored, at most once per interval
        pws.send_json({"type": "typing", "request_id": rid})
        t = next_event(cws, "chat.typing")
        assert (t["data"]["from"], t["data"]["to"]) == (pid, cid)
        pws.send_json({"type": "typing", "request_id": rid})
        err = reply(pws, "error")
        assert err["code"] == "rate_limited"
        nothing(cws, "chat.typing", 0.5)
        assert len(stored(rid)) == 2

        # read receipt over the WebSocket, seen by the other side
        pws.send_json({"type": "read", "request_id": rid,
                       "message_id": m["id"]})
        ack = reply(pws, "read.ack")
        assert ack["receipt"]["up_to"] == m["id"]
        assert ack["receipt"]["unread"] == 0
        rd = next_event(cws, "chat.read")
        assert rd["data"]["reader_id"] == pid
        assert rd["data"]["up_to"] == m["id"]

        # the typing limit ends with its interval (2 s by default)
        time.sleep(2.1)
        pws.send_json({"type": "typing", "request_id": rid})
        assert next_event(cws, "chat.typing")["data"]["from"] == pid
    finally:
        topic.close()
        cws.close()
        pws.close()


def test_offered_providers_see_only_their_own_pair(two):
    a, b = two
    cid, ctok = user(a, "client")
    p1, t1 = user(a, "provider")
    p2, t2 = user(a, "provider")
    rid = new_request(a, (cid, ctok), offered_to=[(p1, t1), (p2, t2)])
    chan = f"request:{rid}"

    w1 = connect(a, t1, chan)
    w2 = connect(b, t2, chan)
    wc = connect(b, ctok, chan)
    try:
        assert send(a, rid, ctok, "only for p1", to=p1).status == 201
        assert next_event(w1, "chat.message")["data"]["text"] == \
            "only for p1"
        assert next_event(wc, "chat.message")["data"]["to"] == p1

        # the client chats with p2 over the socket; p1 never sees it
        wc.send_json({"type": "chat", "request_id": rid, "to": p2,
                      "text": "only for p2", "client_msg_id": cmid()})
        assert reply(wc, "chat.ack")["message"]["to"] == p2
        assert next_event(w2, "chat.message")["data"]["text"] == \
            "only for p2"
        nothing(w1, "chat.message", 1.0)

        # a client with several offers must say to whom
        wc.send_json({"type": "chat", "request_id": rid,
                       "text": "to whom?", "client_msg_id": cmid()})
        err = reply(wc, "error")
        assert err["code"] == "bad_message"

        # p2 typing reaches the client, not p1
        w2.send_json({"type": "typing", "request_id": rid})
        assert next_event(wc, "chat.typing")["data"]["from"] == p2
        nothing(w1, "chat.typing", 0.5)
    finally:
        for w in (w1, w2, wc):
            w.close()


def test_strangers_and_bad_messages_get_error_frames(two):
    a, _ = two
    cid, ctok = user(a, "client")
    pid, ptok = user(a, "provider")
    sid, stok = user(a, "client")
    rid = new_request(a, (cid, ctok), accepted_by=(pid, ptok))

    ws = connect(a, stok)
    try:
        ws.send_json({"type": "chat", "request_id": rid, "text": "hi",
                      "client_msg_id": "x1"})
        err = reply(ws, "error")
        assert err["code"] == "forbidden" and err["detail"]
        ws.send_json({"type": "typing", "request_id": rid})
        assert reply(ws, "error")["code"] == "forbidden"

        bad = [
            {"type": "chat", "request_id": rid, "client_msg_id": "x2"},
            {"type": "chat", "request_id": rid, "text": "",
             "client_msg_id": "x3"},
            {"type": "chat", "request_id": rid, "text": "a" * 4001,
             "client_msg_id": "x4"},
            {"type": "chat", "request_id": rid, "text": {"$ne": None},
             "client_msg_id": "x5"},
            {"type": "chat", "request_id": "nothex", "text": "a",
             "client_msg_id": "x6"},
            {"type": "chat", "request_id": rid, "text": "a",
             "client_msg_id": 7},
            {"type": "chat", "request_id": rid, "text": "a",
             "client_msg_id": "x8", "$set": 1},
            {"type": "read", "request_id": rid},
            {"type": "typing"},
        ]
        for msg in bad:
            ws.send_json(msg)
            err = reply(ws, "error")
            assert err["code"] == "bad_message", (msg, err)
        ws.send_json({"type": "chat", "request_id": str(ObjectId()),
                      "text": "a", "client_msg_id": "x9"})
        assert reply(ws, "error")["code"] == "not_found"

        # the connection still works after all that
        ws.send_json({"type": "subscribe", "channel": f"user:{sid}"})
        assert reply(ws, "subscribed")["channel"] == f"user:{sid}"
        assert stored(rid) == []
    finally:
        ws.close()


def test_a_socket_closed_mid_send_leaves_the_message_stored(two):
    a, _ = two
    cid, ctok = user(a, "client")
    pid, ptok = user(a, "provider")
    rid = new_request(a, (cid, ctok), accepted_by=(pid, ptok))

    ws = connect(a, ctok)
    for i in range(10):
        ws.send_json({"type": "chat", "request_id": rid, "text": f"b{i}",
                      "client_msg_id": f"gone-{i}"})
    ws.shutdown()

    wait_for(lambda: len(stored(rid)) == 10, timeout=10,
             what="10 messages stored")
    assert a.get("/healthz").status == 200


def test_realtime_without_chat_says_unknown_type():
    """feira_chat not configured: its types are not served, the rest is."""
    n = Nginx()
    with open(n.conf) as f:
        conf = f.read()
    conf = conf.replace("feira_chat;", "return 404;")
    assert "feira_chat;" not in conf
    with open(n.conf, "w") as f:
        f.write(conf)
    n.start()
    try:
        wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
                 what="/readyz 200")
        uid, tok = user(n, "client")
        ws = connect(n, tok, f"user:{uid}")
        ws.send_json({"type": "chat", "request_id": str(ObjectId()),
                      "text": "x", "client_msg_id": "1"})
        err = reply(ws, "error")
        assert err["code"] == "unknown_type"
        ws.send_json({"type": "unsubscribe", "channel": f"user:{uid}"})
        assert reply(ws, "unsubscribed")["channel"] == f"user:{uid}"
        ws.close()
    finally:
        n.stop()
        n.check_log()
        n.cleanup()
