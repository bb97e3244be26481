"""Hostile clients, limited by configuration (issue 12): a slowloris
client is cut off by client_header_timeout and never starves the others,
a flood of WebSockets from one address stops at limit_conn with a 429
problem+json, and nginx's own errors (no route, URI too long) are
problem+json like the API's."""

import json
import socket
import time

from authutil import register
from feira import wait_for
from wsclient import WS as WebSocket

WS_LIMIT = 100  # limit_conn feira_ws_addr in conf/nginx.conf


def assert_problem(r, status):
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_nginx_errors_are_problem_json(nginx):
    assert_problem(nginx.get("/no/such/route"), 404)
    assert_problem(nginx.get("/v1/nothing-here"), 404)
    assert_problem(nginx.post("/no/such/route", {"a": 1}), 404)
    body = assert_problem(nginx.get("/" + "x" * 20000), 414)
    assert "too long" in body["detail"]

    # a request line nginx cannot parse
    with socket.create_connection(("127.0.0.1", nginx.port)) as s:
        s.sendall(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = s.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 400")
    assert "application/problem+json" in head
    assert json.loads(head.split("\r\n\r\n", 1)[1])["status"] == 400


def slow_client(port):
    """A slowloris: a request line, then a header byte now and then."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return s


def test_slowloris_is_cut_off_and_others_are_served(nginx_factory):
    n = nginx_factory(directives={"client_header_timeout": "2s"})
    slow = [slow_client(n.port) for _ in range(300)]
    try:
        start = time.monotonic()
        # the others are served at once, all along
        for _ in range(20):
            assert n.get("/healthz", timeout=2).status == 200
        closed = set()
        while len(closed) < len(slow) and time.monotonic() - start < 10:
            for i, s in enumerate(slow):
                if i in closed:
                    continue
                try:
                    s.sendall(b"a")  # never finishing its header
                    s.settimeout(0.01)
                    if s.recv(1024) == b"":
                        closed.add(i)
                except socket.timeout:
                    pass
                except OSError:
                    closed.add(i)
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        # every one dropped by the server, after the timeout, not before
        assert len(closed) == len(slow)
        assert 1.5 < elapsed < 10
        assert n.get("/healthz", timeout=2).status == 200
    finally:
        for s in slow:
            s.close()
    assert "client timed out" in n.log()


def test_a_websocket_flood_stops_at_limit_conn(nginx):
    wait_for(lambda: nginx.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    u = register(nginx, role="client")
    token = u["access_token"]
    held = []
    try:
        for _ in range(WS_LIMIT):
            held.append(WebSocket.connect(nginx.port, token))
        status, headers, body, ws = WebSocket.open_raw(nginx.port,
                                                       token=token)
        assert ws is None and status == 429
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["status"] == 429

        # other requests of the same address, and the sockets held, work
        assert nginx.get("/healthz").status == 200
        assert nginx.get("/v1/auth/me", token=token).status == 200
        held[0].send_json({"type": "subscribe",
                           "channel": f"user:{u['user']['id']}"})
        assert held[0].recv_json(timeout=10)["type"] == "subscribed"
    finally:
        for ws in held:
            ws.sock.close()

    # the slots are freed with the connections
    def reconnect():
        status, _, _, ws = WebSocket.open_raw(nginx.port, token=token)
        if ws is not None:
            ws.sock.close()
        return status == 101
    wait_for(reconnect, timeout=10, what="a WebSocket after the flood")
