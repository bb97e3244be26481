"""Users and tokens for the integration tests: real registrations through
the auth API, and hand-made JWTs for the attacks."""

import base64
import hashlib
import hmac
import json
import os
import uuid

from feira import stack_env

PASSWORD = "correct horse battery staple"


def unique_email(prefix="user"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def register(n, role="client", email=None, password=PASSWORD, name="Test"):
    email = email or unique_email(role)
    r = n.post("/v1/auth/register", {"email": email, "password": password,
                                     "name": name, "role": role})
    assert r.status == 201, r.body
    body = r.json()
    body["email"] = email
    body["password"] = password
    return body


def secret():
    path = os.path.join(stack_env()["STACK_DIR"], "secrets", "jwt-secret")
    with open(path, "rb") as f:
        return f.read().strip()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode(token):
    h, p, _ = token.split(".")
    return json.loads(unb64url(h)), json.loads(unb64url(p))


def sign(header, payload, key, alg="HS256"):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    if alg == "none":
        sig = b""
    else:
        sig = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


def login_admin(n):
    """The admin seeded from configuration (feira_auth_admin), signed in
    with the password of the stack's secrets directory; the seed runs at
    start, so the first attempts may come too early."""
    from feira import wait_for
    path = os.path.join(stack_env()["STACK_DIR"], "secrets", "admin-password")
    with open(path) as f:
        password = f.read().strip()
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(
        n.post("/v1/auth/login", {"email": "admin@feira.local",
                                  "password": password})),
        timeout=10, what="admin login")
    return r.json()
