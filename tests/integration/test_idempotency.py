"""feira_idempotency: Idempotency-Key on the POSTs of any location, here in
front of a counting upstream so that every execution is seen."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from authutil import register
from feira import wait_for


class Counter:
    """An upstream that counts executions and can fail or be slow."""

    def __init__(self):
        self.count = 0
        self.fail_next = 0
        self.delay = 0.0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(outer.delay)
                outer.count += 1
                if outer.fail_next:
                    outer.fail_next -= 1
                    status, out = 500, b'{"error":"boom"}'
                else:
                    status = 201
                    out = json.dumps({"n": outer.count,
                                      "echo": json.loads(body),
                                      "user": self.headers.get("X-User")
                                      }).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def setup(nginx_factory):
    up = Counter()
    n = nginx_factory(server_conf=f"""
        location = /t/idem {{
            feira_auth_require;
            feira_idempotency on;
            proxy_set_header X-User $feira_user_id;
            proxy_pass http://127.0.0.1:{up.port};
        }}
    """)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    yield n, up, register(n)["access_token"]
    up.server.shutdown()


def post(n, token, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return n.post("/t/idem", body, token=token, headers=headers)


def test_a_retry_replays_the_first_answer(setup):
    n, up, token = setup
    first = post(n, token, {"amount": 100}, key="k-1")
    assert first.status == 201 and first.json()["n"] == 1
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = post(n, token, {"amount": 100}, key="k-1")
        assert again.status == 201
        assert again.body == first.body
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
    assert up.count == 1


def test_same_key_other_body_is_422_and_runs_nothing(setup):
    n, up, token = setup
    assert post(n, token, {"amount": 100}, key="k-2").status == 201
    r = post(n, token, {"amount": 999}, key="k-2")
    assert r.status == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert up.count == 1


def test_without_a_key_every_post_runs(setup):
    n, up, token = setup
    assert post(n, token, {"a": 1}).json()["n"] == 1
    assert post(n, token, {"a": 1}).json()["n"] == 2


def test_keys_are_per_caller(setup):
    n, up, token = setup
    other = register(n)["access_token"]
    a = post(n, token, {"x": 1}, key="shared")
    b = post(n, other, {"x": 1}, key="shared")
    assert a.status == b.status == 201
    assert a.json()["user"] != b.json()["user"]
    assert up.count == 2


def test_bad_keys_are_400(setup):
    n, up, token = setup
    for key in ("x" * 129, "has space", "tab\there"):
        r = n.post("/t/idem", {"a": 1}, token=token,
                   headers={"Idempotency-Key": key})
        assert r.status == 400, key
    assert up.count == 0


def test_server_errors_are_not_kept(setup):
    n, up, token = setup
    up.fail_next = 1
    assert post(n, token, {"a": 1}, key="k-err").status == 500
    time.sleep(0.3)  # the key is let go after the answer
    r = post(n, token, {"a": 1}, key="k-err")
    assert r.status == 201 and up.count == 2


def test_concurrent_retries_run_once(setup):
    n, up, token = setup
    up.delay = 0.5
    results = []

    def go():
        results.append(post(n, token, {"pay": 1}, key="k-race"))

    threads = [threading.Thread(target=go) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert up.count == 1
    assert {r.status for r in results} == {201}
    assert len({r.body for r in results}) == 1
    assert sum(1 for r in results
               if r.headers.get("idempotent-replayed") == "true") == 4
