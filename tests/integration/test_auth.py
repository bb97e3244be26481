"""feira_auth: register, login, refresh rotation, logout, the JWT check at
the edge, and every bad input of issue 3, against the real stack."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymongo
import pytest

from authutil import (PASSWORD, decode, register, secret, sign,
                      unique_email)
from feira import request, service, stack_env, wait_for


def users_collection():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database().users


def assert_unauthorized(r):
    assert r.status == 401, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert r.json()["status"] == 401


# the whole sequence of the issue

def test_register_login_me_refresh_reuse_logout(nginx):
    email = unique_email("Flow")
    reg = register(nginx, email=email)
    assert reg["token_type"] == "Bearer"
    assert reg["expires_in"] == 900
    user = reg["user"]
    assert user["email"] == email and user["role"] == "client"
    assert len(user["id"]) == 24
    assert "password_hash" not in user and "password" not in user

    header, claims = decode(reg["access_token"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == user["id"] and claims["role"] == "client"
    assert claims["iss"] == "feira" and claims["aud"] == "feira-api"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]

    # login is case-insensitive on the e-mail
    r = nginx.post("/v1/auth/login", {"email": email.upper(),
                                      "password": PASSWORD})
    assert r.status == 200, r.body
    pair = r.json()
    assert r.headers["cache-control"] == "no-store"

    me = nginx.get("/v1/auth/me", token=pair["access_token"])
    assert me.status == 200
    assert me.json()["id"] == user["id"]
    assert "password_hash" not in me.json()

    # rotation: a new pair; the old refresh token is spent
    r = nginx.post("/v1/auth/refresh",
                   {"refresh_token": pair["refresh_token"]})
    assert r.status == 200, r.body
    rotated = r.json()
    assert rotated["refresh_token"] != pair["refresh_token"]
    assert nginx.get("/v1/auth/me",
                     token=rotated["access_token"]).status == 200

    # the old one again: theft; 401 and the whole family is revoked
    time.sleep(1.1)  # issued-before is counted in whole seconds
    assert_unauthorized(nginx.post("/v1/auth/refresh",
                                   {"refresh_token": pair["refresh_token"]}))
    assert_unauthorized(nginx.post("/v1/auth/refresh",
                                   {"refresh_token": rotated["refresh_token"]}))
    # and the access tokens issued so far stop working too
    assert_unauthorized(nginx.get("/v1/auth/me",
                                  token=rotated["access_token"]))

    # a fresh login works again; logout ends it at once
    r = nginx.post("/v1/auth/login", {"email": email, "password": PASSWORD})
    assert r.status == 200, r.body
    fresh = r.json()
    assert nginx.get("/v1/auth/me", token=fresh["access_token"]).status == 200
    r = nginx.post("/v1/auth/logout", token=fresh["access_token"])
    assert r.status == 204 and r.body == b""
    assert_unauthorized(nginx.get("/v1/auth/me", token=fresh["access_token"]))
    assert_unauthorized(nginx.post("/v1/auth/refresh",
                                   {"refresh_token": fresh["refresh_token"]}))


# bad input: a problem+json each, and nothing stored

BAD_REGISTRATIONS = [
    ({"email": {"$ne": None}, "password": PASSWORD, "name": "x",
      "role": "client"}, "email"),
    ({"email": "a@b.co", "password": "short", "name": "x", "role": "client"},
     "password"),
    ({"email": "not-an-email", "password": PASSWORD, "name": "x",
      "role": "client"}, "email"),
    ({"email": "a@b", "password": PASSWORD, "name": "x", "role": "client"},
     "email"),
    ({"email": "a@b.co", "password": PASSWORD, "name": "x", "role": "admin"},
     "role"),
    ({"email": "a@b.co", "password": PASSWORD, "role": "client"}, "name"),
    ({"email": "a@b.co", "password": 1234567890123, "name": "x",
      "role": "client"}, "password"),
    ({"email": "a@b.co", "password": PASSWORD, "name": "x", "role": "client",
      "password_hash": "x"}, "password_hash"),
    ({"email": "a@b.co", "password": PASSWORD, "name": "x", "role": "client",
      "$where": "1"}, "$where"),
    ({"email": "a@b.co", "password": PASSWORD, "name": "x" * 101,
      "role": "client"}, "name"),
    ({"email": "a@b.co", "password": PASSWORD, "name": "x", "role": "client",
      "phone": "call me"}, "phone"),
]


@pytest.mark.parametrize("body, field", BAD_REGISTRATIONS)
def test_bad_registration_is_400_and_stores_nothing(nginx, body, field):
    users = users_collection()
    before = users.count_documents({})
    r = nginx.post("/v1/auth/register", body)
    assert r.status == 400, r.body
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert "$ne" not in r.body.decode() and "Mongo" not in r.body.decode()
    assert users.count_documents({}) == before


def test_wrong_content_type_bad_json_and_oversized(nginx):
    ok = {"email": unique_email(), "password": PASSWORD, "name": "x",
          "role": "client"}
    r = nginx.post("/v1/auth/register", json.dumps(ok),
                   headers={"Content-Type": "text/plain"})
    assert r.status == 415 and r.json()["status"] == 415
    r = nginx.post("/v1/auth/register", "{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status == 400
    r = nginx.post("/v1/auth/register", '{"email":"a","email":"b"}',
                   headers={"Content-Type": "application/json"})
    assert r.status == 400
    big = dict(ok, name="x" * 70000)
    r = nginx.post("/v1/auth/register", big)
    assert r.status == 413 and r.json()["status"] == 413
    assert request(nginx.port, "GET", "/v1/auth/register").status == 405
    # none of it created the user
    assert users_collection().count_documents({"email": ok["email"]}) == 0


def test_email_case_tricks_on_register_are_409(nginx):
    email = unique_email("Case")
    register(nginx, email=email)
    for variant in (email.upper(), email.lower(), email.swapcase()):
        r = nginx.post("/v1/auth/register", {"email": variant,
                                             "password": PASSWORD,
                                             "name": "x", "role": "client"})
        assert r.status == 409, r.body
    assert users_collection().count_documents(
        {"email_lc": email.lower()}) == 1


def test_login_answer_never_says_whether_the_email_exists(nginx):
    known = register(nginx)
    a = nginx.post("/v1/auth/login", {"email": known["email"],
                                      "password": "wrong password!"})
    b = nginx.post("/v1/auth/login", {"email": unique_email("nobody"),
                                      "password": "wrong password!"})
    assert a.status == b.status == 401
    assert a.body == b.body
    r = nginx.post("/v1/auth/login", {"email": {"$ne": None},
                                      "password": {"$ne": None}})
    assert r.status == 400


def test_repeated_login_failures_are_429_and_success_resets(nginx):
    user = register(nginx)
    bad = {"email": user["email"], "password": "wrong password!"}
    for _ in range(4):
        assert nginx.post("/v1/auth/login", bad).status == 401
    # a success resets the count
    assert nginx.post("/v1/auth/login", {"email": user["email"],
                                         "password": PASSWORD}).status == 200
    for _ in range(4):
        assert nginx.post("/v1/auth/login", bad).status == 401
    # the fifth failure locks the key
    assert nginx.post("/v1/auth/login", bad).status == 401
    r = nginx.post("/v1/auth/login", bad)
    assert r.status == 429
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert r.headers["content-type"] == "application/problem+json"
    # even the right password waits
    assert nginx.post("/v1/auth/login", {"email": user["email"],
                                         "password": PASSWORD}).status == 429
    # another account is not affected
    other = register(nginx)
    assert nginx.post("/v1/auth/login", {"email": other["email"],
                                         "password": PASSWORD}).status == 200


# tokens

def forged(n, mutate, key=None):
    """A real token's claims, changed by mutate(header, claims), signed."""
    user = register(n)
    header, claims = decode(user["access_token"])
    header, claims = dict(header), dict(claims)
    alg = mutate(header, claims) or "HS256"
    return user, sign(header, claims, key or secret(), alg)


def test_a_resigned_unchanged_token_is_accepted(nginx):
    # the control for the attacks below: our forging is faithful
    _, token = forged(nginx, lambda h, c: None)
    assert nginx.get("/v1/auth/me", token=token).status == 200


@pytest.mark.parametrize("name, mutate", [
    ("alg none", lambda h, c: (h.update(alg="none"), "none")[1]),
    ("wrong issuer", lambda h, c: c.update(iss="evil")),
    ("wrong audience", lambda h, c: c.update(aud="other-api")),
    ("audience list", lambda h, c: c.update(aud=["feira-api"])),
    ("expired", lambda h, c: c.update(exp=int(time.time()) - 120)),
    ("not yet valid", lambda h, c: c.update(nbf=int(time.time()) + 600)),
    ("issued in the future", lambda h, c: c.update(iat=int(time.time()) + 600)),
    ("garbage kid", lambda h, c: h.update(kid="../../etc/passwd")),
    ("other token type", lambda h, c: c.update(token_use="refresh")),
    ("no token type", lambda h, c: c.pop("token_use")),
    ("header typ", lambda h, c: h.update(typ="refresh+jwt")),
    ("role escalation unsigned", None),
    ("bad subject", lambda h, c: c.update(sub={"$ne": None})),
    ("unknown role", lambda h, c: c.update(role="root")),
    ("crit header", lambda h, c: h.update(crit=["exp"])),
])
def test_forged_tokens_are_401(nginx, name, mutate):
    if mutate is None:
        # a tampered payload keeping the old signature
        user = register(nginx)
        h, p, s = user["access_token"].split(".")
        _, claims = decode(user["access_token"])
        claims["role"] = "admin"
        from authutil import b64url
        token = f"{h}.{b64url(json.dumps(claims).encode())}.{s}"
    else:
        _, token = forged(nginx, mutate)
    assert_unauthorized(nginx.get("/v1/auth/me", token=token))


def test_wrong_secret_refresh_as_access_and_malformed(nginx):
    user, token = forged(nginx, lambda h, c: None, key=b"x" * 48)
    assert_unauthorized(nginx.get("/v1/auth/me", token=token))
    assert_unauthorized(nginx.get("/v1/auth/me", token=user["refresh_token"]))
    for bad in ("", "a.b", "a.b.c", "....", "é.é.é", "x" * 5000):
        r = request(nginx.port, "GET", "/v1/auth/me",
                    headers={"Authorization": f"Bearer {bad}"})
        assert_unauthorized(r)
    r = request(nginx.port, "GET", "/v1/auth/me",
                headers={"Authorization": f"Basic {user['access_token']}"})
    assert_unauthorized(r)
    assert_unauthorized(nginx.get("/v1/auth/me"))


def test_expiry_leeway(nginx):
    # expired 10 s ago: within the 30 s leeway
    _, token = forged(nginx, lambda h, c: c.update(exp=int(time.time()) - 10))
    assert nginx.get("/v1/auth/me", token=token).status == 200


def test_jwks_is_empty_for_hs256(nginx):
    r = nginx.get("/.well-known/jwks.json")
    assert r.status == 200 and r.json() == {"keys": []}


def test_admin_is_seeded_from_configuration(nginx):
    import os
    path = os.path.join(stack_env()["STACK_DIR"], "secrets", "admin-password")
    with open(path) as f:
        password = f.read().strip()
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(
        nginx.post("/v1/auth/login", {"email": "admin@feira.local",
                                      "password": password})),
        timeout=10, what="admin login")
    assert r.json()["user"]["role"] == "admin"
    assert decode(r.json()["access_token"])[1]["role"] == "admin"


# feira_auth_require in any location

class Upstream:
    """Someone else's backend: records the headers it is sent."""

    def __init__(self):
        seen = self.seen = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(dict(self.headers))
                body = b"upstream ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def test_protected_proxy_pass_location_passes_the_user(nginx_factory,
                                                        upstream):
    n = nginx_factory(server_conf=f"""
        location /proxied/ {{
            feira_auth_require;
            proxy_set_header X-User-Id $feira_user_id;
            proxy_set_header X-User-Role $feira_user_role;
            proxy_pass http://127.0.0.1:{upstream.port};
        }}
        location = /t/providers {{
            # a content handler: "return" would run before the access phase
            feira_auth_require provider admin;
            feira_healthz;
        }}
    """)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    client = register(n, role="client")
    provider = register(n, role="provider")

    assert_unauthorized(n.get("/proxied/x"))
    assert upstream.seen == []

    r = n.get("/proxied/x", token=client["access_token"])
    assert r.status == 200 and r.body == b"upstream ok"
    assert upstream.seen[-1]["X-User-Id"] == client["user"]["id"]
    assert upstream.seen[-1]["X-User-Role"] == "client"

    r = n.get("/t/providers", token=client["access_token"])
    assert r.status == 403 and r.json()["status"] == 403
    assert n.get("/t/providers",
                 token=provider["access_token"]).status == 200
    # keep-alive survives a rejection with a body sent
    r = n.post("/t/providers", body={"a": 1})
    assert r.status == 401


def test_deny_list_survives_a_reload(nginx):
    user = register(nginx)
    assert nginx.post("/v1/auth/logout",
                      token=user["access_token"]).status == 204
    nginx.reload()
    time.sleep(1)
    assert_unauthorized(nginx.get("/v1/auth/me", token=user["access_token"]))
    other = register(nginx)
    assert nginx.get("/v1/auth/me", token=other["access_token"]).status == 200


def test_logout_on_one_instance_reaches_another_within_a_second(
        nginx_factory):
    a = nginx_factory(workers=2)
    b = nginx_factory(workers=2)
    for n in (a, b):
        wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    user = register(a)
    token = user["access_token"]
    # the same token works on both (shared secret), on every worker
    for _ in range(4):
        assert b.get("/v1/auth/me", token=token).status == 200

    assert a.post("/v1/auth/logout", token=token).status == 204
    start = time.monotonic()
    wait_for(lambda: all(b.get("/v1/auth/me", token=token).status == 401
                         for _ in range(4)),
             timeout=1.0, interval=0.02, what="logout seen by instance B")
    assert time.monotonic() - start <= 1.0
    # and a restarted instance loads it from Redis
    c = nginx_factory()
    wait_for(lambda: c.get("/readyz").status == 200, timeout=60)
    assert_unauthorized(c.get("/v1/auth/me", token=token))


def test_redis_down_fails_closed_and_recovers(nginx_factory):
    n = nginx_factory(server_conf="""
        location = /t/protected {
            feira_auth_require;
            feira_healthz;
        }
        location = /t/open {
            return 200 "open";
        }
    """, directives={"feira_auth_feed_timeout": "2s"})
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    user = register(n)
    token = user["access_token"]
    assert n.get("/t/protected", token=token).status == 200

    service("stop", "redis")
    try:
        r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(
            n.get("/t/protected", token=token)), timeout=10,
            what="protected location 503 with Redis down")
        assert r.headers["content-type"] == "application/problem+json"
        # never open: not once a 200 while down
        for _ in range(10):
            assert n.get("/t/protected", token=token).status == 503
        # what needs no auth keeps serving
        assert n.get("/t/open").status == 200
    finally:
        service("start", "redis")

    wait_for(lambda: n.get("/t/protected", token=token).status == 200,
             timeout=20, what="recovery after Redis is back")


def test_concurrent_refreshes_of_one_token_one_wins(nginx_factory):
    """The same refresh token sent many times at once (a client bug or a
    thief racing the owner): at most one rotation succeeds (FerretDB's
    updates are not exclusive: the rotation claim is), the others are a
    reuse."""
    n = nginx_factory(workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    u = register(n)
    token = u["refresh_token"]
    barrier = threading.Barrier(8)
    answers = []

    def refresh():
        barrier.wait()
        answers.append(n.post("/v1/auth/refresh", {"refresh_token": token}))

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(r.status for r in answers)
    # never two token chains: at most one new pair, every other a reuse
    assert statuses.count(200) <= 1, statuses
    assert statuses.count(401) >= 7, statuses
    # and the presented token is dead for good
    assert n.post("/v1/auth/refresh",
                  {"refresh_token": token}).status == 401
