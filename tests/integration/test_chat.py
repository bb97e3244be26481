"""The chat HTTP API (feira_chat): messages stored first and answered as
stored, idempotent sends (also under concurrent retries), stable history
pages while messages keep arriving, read receipts and unread counts, who
may talk to whom, hostile input, and the feira.chat event on Kafka."""

import concurrent.futures
import datetime
import threading

import pytest
from bson import ObjectId

from chatutil import (ChatTopic, cmid, db, forget_messages, new_request,
                      send, stored, user)
from feira import Nginx, wait_for
from requestutil import accept


@pytest.fixture(autouse=True)
def _forget_messages():
    yield
    forget_messages()


@pytest.fixture(scope="module")
def n():
    ng = Nginx(workers=2)
    ng.start()
    wait_for(lambda: ng.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    yield ng
    ng.stop()
    ng.check_log()
    ng.cleanup()


@pytest.fixture
def pair(n):
    """An accepted request: (request id, (client id, token),
    (provider id, token))."""
    c = user(n, "client")
    p = user(n, "provider")
    rid = new_request(n, c, accepted_by=p)
    return rid, c, p


def history(n, rid, token, **args):
    q = "&".join(f"{k}={v}" for k, v in args.items())
    r = n.get(f"/v1/requests/{rid}/messages" + (f"?{q}" if q else ""),
              token=token)
    assert r.status == 200, r.body
    return r.json()


def test_send_is_stored_and_answered_as_stored(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair
    text = 'Olá <b>"chefe"</b> \\ ☃ 😀\nlinha 2'

    r = send(n, rid, ctok, text, client_msg_id="m-1")
    assert r.status == 201, r.body
    assert r.headers["content-type"].startswith("application/json")
    m = r.json()
    assert m["text"] == text
    assert (m["from"], m["to"]) == (cid, pid)
    assert (m["request_id"], m["client_id"], m["provider_id"]) == \
        (rid, cid, pid)
    assert m["client_msg_id"] == "m-1"
    datetime.datetime.strptime(m["created_at"], "%Y-%m-%dT%H:%M:%SZ")

    # stored exactly as given, before the answer
    docs = stored(rid)
    assert len(docs) == 1 and docs[0]["text"] == text
    assert str(docs[0]["_id"]) == m["id"]
    assert docs[0]["from"] == ObjectId(cid)

    r = send(n, rid, ptok, "reply")
    assert r.status == 201, r.body
    assert (r.json()["from"], r.json()["to"]) == (pid, cid)

    # both sides read the same conversation, newest first
    for tok in (ctok, ptok):
        h = history(n, rid, tok)
        assert [i["text"] for i in h["items"]] == ["reply", text]
        assert h["next_cursor"] is None


def test_history_keeps_the_order_of_sends_across_workers(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair
    # two nginx workers: consecutive sends are made by either of them
    ids = [send(n, rid, ctok if i % 3 else ptok, f"o{i}").json()["id"]
           for i in range(30)]
    h = history(n, rid, ctok, limit=100)
    assert [m["id"] for m in h["items"]] == ids[::-1]
    assert [m["text"] for m in h["items"]] == [f"o{i}" for i in
                                                range(29, -1, -1)]


def test_retry_returns_the_same_message(n, pair):
    rid, (cid, ctok), _ = pair

    first = send(n, rid, ctok, "hello", client_msg_id="retry-1")
    assert first.status == 201
    again = send(n, rid, ctok, "hello", client_msg_id="retry-1")
    assert again.status == 200, again.body
    assert again.json() == first.json()
    assert len(stored(rid)) == 1

    # the same id with another text is a conflict, and changes nothing
    other = send(n, rid, ctok, "bye", client_msg_id="retry-1")
    assert other.status == 409, other.body
    assert other.headers["content-type"].startswith(
        "application/problem+json")
    assert other.json()["errors"][0]["field"] == "client_msg_id"
    assert [d["text"] for d in stored(rid)] == ["hello"]


def test_concurrent_retries_store_one_message(n, pair):
    rid, (cid, ctok), _ = pair

    def go(_):
        return send(n, rid, ctok, "once", client_msg_id="burst-1")

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        answers = list(ex.map(go, range(32)))

    assert all(a.status in (200, 201, 503) for a in answers), \
        [(a.status, a.body) for a in answers]
    ok = [a for a in answers if a.status in (200, 201)]
    assert len(ok) >= 16
    assert len({a.json()["id"] for a in ok}) == 1
    assert sum(a.status == 201 for a in answers) == 1
    assert len(stored(rid)) == 1


def test_history_pages_without_gaps_or_repeats_while_sends_go_on(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair

    def go(i):
        tok = ctok if i % 2 else ptok
        r = send(n, rid, tok, f"m{i}", client_msg_id=f"c{i}")
        assert r.status == 201, r.body
        return r.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        ids = set(ex.map(go, range(500)))
    assert len(ids) == 500

    # page back while both keep sending
    stop = threading.Event()
    late = []

    def keep_sending():
        i = 0
        while not stop.is_set():
            r = send(n, rid, ctok, f"late{i}")
            assert r.status == 201
            late.append(r.json()["id"])
            i += 1

    t = threading.Thread(target=keep_sending)
    t.start()
    try:
        seen = []
        cursor = None
        while True:
            args = {"limit": 37}
            if cursor:
                args["before"] = cursor
            h = history(n, rid, ptok, **args)
            seen += [i["id"] for i in h["items"]]
            cursor = h["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        t.join()

    assert late, "no message arrived while paging"
    assert len(seen) == len(set(seen)), "a message came twice"
    assert ids <= set(seen), "a message is missing"
    # newest first: ObjectIds strictly decreasing
    assert seen == sorted(seen, key=lambda x: ObjectId(x), reverse=True)
    assert set(seen) - ids <= set(late)


def test_thousands_of_messages_page_by_the_conversation_index(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair
    other = new_request(n, (cid, ctok), accepted_by=(pid, ptok))
    now = datetime.datetime.now(datetime.timezone.utc)

    def docs(request, count):
        return [{"_id": ObjectId(), "request_id": ObjectId(request),
                 "client_id": ObjectId(cid), "provider_id": ObjectId(pid),
                 "from": ObjectId(cid), "to": ObjectId(pid),
                 "text": f"bulk {i}", "client_msg_id": f"bulk-{i}",
                 "created_at": now} for i in range(count)]

    # the index is made on the first use
    assert send(n, rid, ctok, "first").status == 201
    indexes = db().messages.index_information()
    assert indexes["conversation"]["key"] == \
        [("request_id", 1), ("provider_id", 1), ("_id", -1)]
    assert indexes["request_from_cmid_unique"]["unique"]

    mine = docs(rid, 2000)
    for i in range(0, len(mine), 500):
        db().messages.insert_many(mine[i:i + 500])
    db().messages.insert_many(docs(other, 1000))

    seen, cursor, pages = [], None, []
    while True:
        h = history(n, rid, ptok, limit=100,
                    **({"before": cursor} if cursor else {}))
        pages.append(h)
        seen += [i["id"] for i in h["items"]]
        cursor = h["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == 2001 == len(set(seen))
    assert seen[0] == str(mine[-1]["_id"])
    assert {m["request_id"] for p in pages for m in p["items"]} == {rid}
    # the count is on the first page
    assert pages[0]["unread"] == 2001
    assert pages[1]["unread"] is None


def test_read_receipts_and_unread_counts(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair
    sent = [send(n, rid, ctok, f"m{i}").json()["id"] for i in range(3)]
    mine = send(n, rid, ptok, "from provider").json()["id"]

    assert history(n, rid, ptok)["unread"] == 3
    assert history(n, rid, ctok)["unread"] == 1

    r = n.post(f"/v1/requests/{rid}/messages/read", {"up_to": sent[1]},
               token=ptok)
    assert r.status == 200, r.body
    assert r.json()["unread"] == 1 and r.json()["up_to"] == sent[1]
    assert history(n, rid, ptok)["unread"] == 1

    # a receipt never moves back
    r = n.post(f"/v1/requests/{rid}/messages/read", {"up_to": sent[0]},
               token=ptok)
    assert r.status == 200 and r.json()["up_to"] == sent[1]
    assert r.json()["unread"] == 1

    conv = n.get(f"/v1/requests/{rid}/conversations", token=ptok)
    assert conv.status == 200, conv.body
    items = conv.json()["items"]
    assert [(i["provider_id"], i["unread"]) for i in items] == [(pid, 1)]
    assert items[0]["last_message"]["id"] == mine

    r = n.post(f"/v1/requests/{rid}/messages/read", {"up_to": mine},
               token=ctok)
    assert r.status == 200 and r.json()["unread"] == 0

    # an id that is no message of the request
    r = n.post(f"/v1/requests/{rid}/messages/read",
               {"up_to": str(ObjectId())}, token=ctok)
    assert r.status == 400 and r.json()["errors"][0]["field"] == "up_to"


def test_only_participants_and_each_pair_apart(n):
    cid, ctok = user(n, "client")
    a, atok = user(n, "provider")
    b, btok = user(n, "provider")
    _, stok = user(n, "client")
    rid = new_request(n, (cid, ctok), offered_to=[(a, atok), (b, btok)])

    # the client says which provider; each offered provider has its pair
    r = send(n, rid, ctok, "to nobody")
    assert r.status == 400 and r.json()["errors"][0]["field"] == "to"
    assert send(n, rid, ctok, "hi A", to=a).status == 201
    assert send(n, rid, ctok, "hi B", to=b).status == 201
    assert send(n, rid, atok, "A here").status == 201

    assert [m["text"] for m in history(n, rid, atok)["items"]] == \
        ["A here", "hi A"]
    assert [m["text"] for m in history(n, rid, btok)["items"]] == ["hi B"]
    assert [m["text"] for m in
            history(n, rid, ctok, provider=b)["items"]] == ["hi B"]
    conv = n.get(f"/v1/requests/{rid}/conversations", token=ctok).json()
    assert sorted((i["provider_id"], i["unread"]) for i in conv["items"]) \
        == sorted([(a, 1), (b, 0)])

    # a stranger: 403 everywhere, nothing stored
    before = len(stored(rid))
    for r in (send(n, rid, stok, "let me in"),
              n.get(f"/v1/requests/{rid}/messages", token=stok),
              n.get(f"/v1/requests/{rid}/conversations", token=stok),
              n.post(f"/v1/requests/{rid}/messages/read",
                     {"up_to": str(stored(rid)[0]["_id"])}, token=stok)):
        assert r.status == 403, r.body
        assert r.headers["content-type"].startswith(
            "application/problem+json")
    # the client may not pick a provider the request was not offered to
    _, other = user(n, "provider")
    assert send(n, rid, ctok, "x", to=str(ObjectId())).status == 403
    # B may not mark A's conversation read
    a_msg = history(n, rid, atok)["items"][0]["id"]
    r = n.post(f"/v1/requests/{rid}/messages/read", {"up_to": a_msg},
               token=btok)
    assert r.status == 400
    assert len(stored(rid)) == before

    # once A is assigned, B is out; A's conversation goes on
    accept(n, {"token": atok}, rid)
    assert send(n, rid, btok, "still there?").status == 403
    assert n.get(f"/v1/requests/{rid}/messages", token=btok).status == 403
    assert send(n, rid, ctok, "you got it").json()["to"] == a

    # an unknown request, an invalid id, no token
    assert send(n, str(ObjectId()), ctok, "x").status == 404
    r = n.get("/v1/requests/nothex/messages", token=ctok)
    assert r.status == 400
    assert n.get(f"/v1/requests/{rid}/messages").status == 401


def test_bad_input_is_refused_and_stores_nothing(n, pair):
    rid, (cid, ctok), _ = pair
    path = f"/v1/requests/{rid}/messages"

    cases = [
        ({"text": "", "client_msg_id": "a"}, "text"),
        ({"text": "é" * 4001, "client_msg_id": "a"}, "text"),
        ({"text": 5, "client_msg_id": "a"}, "text"),
        ({"text": ["x"], "client_msg_id": "a"}, "text"),
        ({"text": {"$ne": None}, "client_msg_id": "a"}, "text"),
        ({"text": "x", "client_msg_id": 123}, "client_msg_id"),
        ({"text": "x", "client_msg_id": "has space"}, "client_msg_id"),
        ({"text": "x", "client_msg_id": "x" * 65}, "client_msg_id"),
        ({"text": "x"}, "client_msg_id"),
        ({"text": "x", "client_msg_id": "a", "$where": "1"}, "$where"),
        ({"text": "x", "client_msg_id": "a", "from": cid}, "from"),
        ({"text": "x", "client_msg_id": "a", "to": "nothex"}, "to"),
    ]
    for body, field in cases:
        r = n.post(path, body, token=ctok)
        assert r.status == 400, (body, r.body)
        p = r.json()
        assert r.headers["content-type"].startswith(
            "application/problem+json")
        assert field in [e["field"] for e in p["errors"]], (body, p)

    # not JSON, not UTF-8, not an object, not application/json
    for raw in (b'{"text": "\xff\xfe", "client_msg_id": "a"}', b"[1]",
                b"{nope", b'{"text": "nul\\u0000", "client_msg_id": "a"}',
                b'{"text": "a", "text": "b", "client_msg_id": "a"}'):
        r = n.post(path, raw, token=ctok,
                   headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r.body)
    r = n.post(path, "text=x", token=ctok,
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415

    # bad pages
    for q in ("limit=0", "limit=101", "limit=x", "before=zz",
              "before=" + "0" * 23, "provider=1"):
        r = n.get(f"{path}?{q}", token=ctok)
        assert r.status == 400, (q, r.body)

    r = n.post(path + "/read", {"up_to": {"$gt": ""}}, token=ctok)
    assert r.status == 400

    assert stored(rid) == []

    # the bound counts characters, not bytes: 4000 two-byte characters
    r = send(n, rid, ctok, "é" * 4000)
    assert r.status == 201 and len(r.json()["text"]) == 4000


def test_chat_message_event_on_kafka(n, pair):
    rid, (cid, ctok), (pid, ptok) = pair
    topic = ChatTopic()
    try:
        m = send(n, rid, ctok, "to kafka", client_msg_id="k-1").json()
        assert send(n, rid, ctok, "to kafka",
                    client_msg_id="k-1").status == 200
        mine = topic.events(lambda ev: any(e["id"] == m["id"]
                                           for _, e in ev))
        # a retry is not published again: a later message comes next
        last = send(n, rid, ctok, "after").json()
        more = topic.events(lambda ev: any(e["id"] == last["id"]
                                           for _, e in ev))
        events = [(k, e) for k, e in mine + more if e["id"] == m["id"]]
        assert len(events) == 1
        key, e = events[0]
        assert key == rid
        assert e["type"] == "chat.message"
        assert e["actor"] == {"id": cid, "role": "client"}
        d = e["data"]
        assert (d["request_id"], d["message_id"], d["from"], d["to"]) == \
            (rid, m["id"], cid, pid)
        assert d["text"] == "to kafka"
        # the provider has no WebSocket open
        assert d["recipient_online"] is False
    finally:
        topic.close()


@pytest.mark.parametrize("line, message", [
    ("feira_chat_text_max 0;", "\"feira_chat_text_max\" must be from 1"),
    ("feira_chat_text_max 10001;", "\"feira_chat_text_max\" must be from 1"),
    ("feira_chat_typing_interval 10ms;",
     "\"feira_chat_typing_interval\" must be"),
    ("feira_chat_online_window 0;", "\"feira_chat_online_window\" must be"),
    ("feira_chat_topic \"bad topic\";", "\"feira_chat_topic\" must be"),
])
def test_bad_chat_directives_fail_nginx_t(line, message):
    ng = Nginx()
    try:
        ng.add_conf("chat.conf", line + "\n")
        r = ng.test_config()
        assert r.returncode != 0
        assert message in r.stderr, r.stderr
    finally:
        ng.cleanup()


def test_the_text_bound_is_configuration(nginx_factory):
    ng = nginx_factory(conf="feira_chat_text_max 5;\n")
    wait_for(lambda: ng.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    cid, ctok = user(ng, "client")
    rid = new_request(ng, (cid, ctok), accepted_by=user(ng, "provider"))
    assert send(ng, rid, ctok, "ééééé").status == 201
    r = send(ng, rid, ctok, "ééééée")
    assert r.status == 400 and r.json()["errors"][0]["field"] == "text"
