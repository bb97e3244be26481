"""The TCP location ingest (nginx stream): AUTH <token>, then
LOC <lat> <lng> [<unix ms>], each answered OK or ERR <reason>; a bad line
is answered, not fatal; a session without AUTH is closed after a timeout;
a location is relayed like one sent over the WebSocket."""

import time

import pytest

from feira import Nginx, wait_for
from rtutil import Ingest, mint, new_id, redis_client, seed_request, user
from wsclient import WS


@pytest.fixture(scope="module")
def rt():
    n = Nginx()
    # a short AUTH timeout for the test of it
    with open(n.conf) as f:
        conf = f.read()
    conf = conf.replace("feira_ingest_auth_timeout  10s;",
                        "feira_ingest_auth_timeout  1s;")
    with open(n.conf, "w") as f:
        f.write(conf)
    n.start()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    yield n
    n.stop()
    n.check_log()
    n.cleanup()


def test_auth_then_locations_relayed(rt):
    client, ctok = user(rt)
    provider, ptok = user(rt, "provider")
    rid = seed_request(client, provider, status="in_progress")
    ws = WS.connect(rt.port, ctok)
    ws.send_json({"type": "subscribe", "channel": f"request:{rid}"})
    assert ws.recv_json()["type"] == "subscribed"

    t = Ingest(rt.stream_port)
    assert t.ask(f"AUTH {ptok}") == "OK"
    at = int(time.time() * 1000) - 1500
    assert t.ask(f"LOC -23.5 -46.6 {at}") == "OK"
    ev = ws.recv_json()["event"]
    assert ev["type"] == "provider.location"
    assert ev["data"]["provider_id"] == provider
    assert ev["data"]["at"] == at
    assert (ev["data"]["lat"], ev["data"]["lng"]) == (-23.5, -46.6)
    assert redis_client().zscore("feira:seen", provider)

    # the next one within the second is refused, the session goes on
    assert t.ask("LOC -23.6 -46.6") == "ERR rate_limited"
    time.sleep(1.05)
    assert t.ask("LOC -23.7 -46.6\r") == "OK"
    assert ws.recv_json()["event"]["data"]["lat"] == -23.7
    t.close()
    ws.shutdown()


@pytest.mark.parametrize("line, answer", [
    ("LOC 1 2", "ERR unauthenticated"),
    ("HELLO", "ERR unknown_command"),
    ("AUTH not-a-token", "ERR invalid_token"),
])
def test_bad_lines_before_auth_are_answered(rt, line, answer):
    t = Ingest(rt.stream_port)
    assert t.ask(line) == answer
    # still open: a good AUTH works after that
    _, ptok = user(rt, "provider")
    assert t.ask(f"AUTH {ptok}") == "OK"
    t.close()


def test_bad_lines_after_auth_are_answered_not_fatal(rt):
    _, ptok = user(rt, "provider")
    t = Ingest(rt.stream_port)
    assert t.ask(f"AUTH {ptok}") == "OK"
    now = int(time.time() * 1000)
    for line, answer in [("LOC", "ERR unknown_command"),
                         ("LOC 1", "ERR bad_location"),
                         ("LOC 91 0", "ERR bad_location"),
                         ("LOC 0 181", "ERR bad_location"),
                         ("LOC abc 1", "ERR bad_location"),
                         ("LOC nan 1", "ERR bad_location"),
                         ("LOC 1 2 3 4", "ERR bad_time"),
                         ("LOC 1 2 1.5", "ERR bad_time"),
                         (f"LOC 1 2 {now + 3600_000}", "ERR bad_time"),
                         (f"LOC 1 2 {now - 3600_000}", "ERR bad_time"),
                         ("loc 1 2", "ERR unknown_command")]:
        assert t.ask(line) == answer, line
    assert t.ask("LOC 1 2") == "OK"
    t.close()


def test_pipelined_lines_are_answered_in_order(rt):
    _, ptok = user(rt, "provider")
    t = Ingest(rt.stream_port)
    t.send(f"AUTH {ptok}\nLOC 1 2\nLOC 1 2\nBAD\n".encode())
    assert [t.line() for _ in range(4)] == ["OK", "OK", "ERR rate_limited",
                                           "ERR unknown_command"]
    t.close()


def test_a_client_is_no_provider(rt):
    _, ctok = user(rt)
    t = Ingest(rt.stream_port)
    assert t.ask(f"AUTH {ctok}") == "ERR forbidden"
    assert t.ask("LOC 1 2") == "ERR unauthenticated"
    t.close()


def test_line_too_long(rt):
    _, ptok = user(rt, "provider")
    t = Ingest(rt.stream_port)
    t.send(b"X" * 5000 + b"\n")
    assert t.line() == "ERR line_too_long"
    assert t.ask(f"AUTH {ptok}") == "OK"
    t.close()


def test_no_auth_in_time_closes(rt):
    t = Ingest(rt.stream_port)
    start = time.monotonic()
    assert t.line(timeout=5) == "ERR auth_timeout"
    assert t.closed()
    assert time.monotonic() - start < 3


def test_expired_and_revoked_tokens(rt):
    provider, _ = user(rt, "provider")
    t = Ingest(rt.stream_port)
    assert t.ask(f"AUTH {mint(provider, 'provider', ttl=-3600)}") \
        == "ERR invalid_token"
    t.close()

    from authutil import register
    u = register(rt, role="provider")
    t = Ingest(rt.stream_port)
    assert t.ask(f"AUTH {u['access_token']}") == "OK"
    assert rt.post("/v1/auth/logout", token=u["access_token"]).status == 204
    assert t.ask("LOC 1 2") == "ERR token_revoked"
    assert t.ask("LOC 1 2") == "ERR unauthenticated"
    t.close()
