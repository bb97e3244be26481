"""Local stand-ins for the SaaS endpoints the notification worker calls:
FCM HTTP v1 (with its OAuth2 token endpoint) and a Twilio-compatible SMS
API.  They record every request, can be told to fail, and verify what a
real provider would: the service-account JWT (RS256, checked with the
public key through the openssl CLI), the bearer token, basic auth.
HTTP/1.1 with keep-alive on one asyncio loop: cheap per request.

Run in-process by the tests (Receiver(...).start()) or as a process by the
benchmark: python3 receivers.py fcm|sms PORT [PUBLIC_KEY_PEM]
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

STATUS_CODES = {s.value for s in HTTPStatus}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(token, public_pem):
    """The JWT's claims when its RS256 signature verifies, else None."""
    try:
        h64, c64, s64 = token.split(".")
        header = json.loads(b64url_decode(h64))
        claims = json.loads(b64url_decode(c64))
        sig = b64url_decode(s64)
    except (ValueError, json.JSONDecodeError):
        return None
    if header.get("alg") != "RS256":
        return None
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "key.pem")
        sigf = os.path.join(d, "sig")
        with open(key, "w") as f:
            f.write(public_pem)
        with open(sigf, "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", key,
                            "-signature", sigf],
                           input=f"{h64}.{c64}".encode(),
                           capture_output=True)
    return claims if r.returncode == 0 else None


class Headers(dict):
    """Request headers, their names case-insensitive."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 client connection, kept alive; requests answered in
    order (the sender waits for each answer before the next request)."""

    def __init__(self, owner):
        self.owner = owner
        self.buf = b""
        self.busy = False
        self.continued = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.owner.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.buf += data
        self.next_request()

    def next_request(self):
        while not self.busy and self.transport is not None \
                and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            try:
                lines = self.buf[:end].decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = Headers()
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                size = int(headers.get("Content-Length") or 0)
            except ValueError:
                self.transport.close()
                return
            if len(self.buf) < end + 4 + size:
                if headers.get("Expect", "").lower() == "100-continue" \
                        and not self.continued:
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = self.buf[end + 4:end + 4 + size]
            self.buf = self.buf[end + 4 + size:]
            self.continued = False
            close = headers.get("Connection", "").lower() == "close"
            if method != "POST":
                self.answer(close, 501, {"error": "unsupported method"})
            elif self.owner.delay:
                # a slow provider: the wait in a thread, not in the loop
                self.busy = True
                done = self.owner.loop.run_in_executor(
                    self.owner.pool, self.owner.handle, path, headers, body)
                done.add_done_callback(
                    lambda f, close=close: self.answered(f, close))
            else:
                try:
                    status, reply = self.owner.handle(path, headers, body)
                except Exception:  # noqa: BLE001 (a bug: 500, as http.server)
                    status, reply, close = 500, {"error": "internal"}, True
                self.answer(close, status, reply)

    def answered(self, future, close):
        self.busy = False
        try:
            status, reply = future.result()
        except Exception:  # noqa: BLE001
            status, reply, close = 500, {"error": "internal"}, True
        self.answer(close, status, reply)
        self.next_request()

    def answer(self, close, status, reply):
        if self.transport is None or self.transport.is_closing():
            return
        data = json.dumps(reply).encode()
        reason = HTTPStatus(status).phrase if status in STATUS_CODES else ""
        head = [f"HTTP/1.1 {status} {reason}",
                "Content-Type: application/json",
                f"Content-Length: {len(data)}"]
        if close:
            head.append("Connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode()
                             + data)
        if close:
            self.transport.close()

    def connection_lost(self, exc):
        self.transport = None
        self.owner.connections.discard(self)


class Receiver:
    """An HTTP/1.1 server that records requests: one asyncio loop in a
    thread, connections kept alive, a request handled in the loop (in a
    thread of its own only while the receiver is told to be slow).  Cheap
    per request, so the benchmark measures the worker, not the stand-in."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = []          # every request, as received
        self.delay = 0.0            # seconds before answering
        self.fail_next = 0          # answer this many sends with fail_status
        self.fail_always = False
        self.fail_status = 503
        self.connections = set()
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.server = self.loop.run_until_complete(self.loop.create_server(
            lambda: Connection(self), "127.0.0.1", port, backlog=256))
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        async def close():
            self.server.close()
            for c in list(self.connections):
                if c.transport is not None:
                    c.transport.close()
        if self.thread is not None:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.pool.shutdown(wait=False)
        self.loop.close()

    def injected_failure(self):
        """True when this send is to fail (and counts it)."""
        with self.lock:
            if self.fail_always:
                return True
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return False


class FcmReceiver(Receiver):
    """FCM HTTP v1: POST /token (OAuth2 JWT bearer grant) and
    POST /v1/projects/<project>/messages:send."""

    def __init__(self, public_pem, project="feira-test", port=0):
        super().__init__(port)
        self.public_pem = public_pem
        self.project = project
        self.tokens = {}            # access token -> expiry
        self.token_requests = 0
        self.unregistered = set()   # device tokens FCM no longer knows
        self.delivered = {}         # idempotency key -> message, first only
        self.duplicates = 0         # sends of a key already delivered

    def handle(self, path, headers, body):
        if path == "/token":
            return self.handle_token(body)
        if path != f"/v1/projects/{self.project}/messages:send":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or \
                self.tokens.get(auth[7:], 0) < time.time():
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                   "message": "invalid token"}}
        msg = json.loads(body)["message"]
        key = headers.get("X-Feira-Idempotency-Key")
        with self.lock:
            self.requests.append({"key": key, "message": msg,
                                  "at": time.time()})
        if self.delay:
            time.sleep(self.delay)
        if msg.get("token") in self.unregistered:
            return 404, {"error": {
                "code": 404, "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
                "details": [{
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": "UNREGISTERED"}]}}
        if self.injected_failure():
            return self.fail_status, {"error": {
                "code": self.fail_status, "message": "The service is unavailable.",
                "status": "UNAVAILABLE"}}
        with self.lock:
            if key in self.delivered:
                self.duplicates += 1
            else:
                self.delivered[key] = dict(msg, at=time.time())
            n = len(self.requests)
        return 200, {"name": f"projects/{self.project}/messages/{n}"}

    def handle_token(self, body):
        form = urllib.parse.parse_qs(body.decode())
        if form.get("grant_type") != \
                ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        claims = verify_rs256(form.get("assertion", [""])[0], self.public_pem)
        now = time.time()
        if claims is None or claims.get("aud") != f"{self.url}/token" or \
                "firebase.messaging" not in claims.get("scope", "") or \
                not claims.get("iat", 0) - 60 <= now <= claims.get("exp", 0):
            return 400, {"error": "invalid_grant"}
        with self.lock:
            self.token_requests += 1
            token = f"ya29.test-{self.token_requests}"
            self.tokens[token] = now + 3600
        return 200, {"access_token": token, "expires_in": 3600,
                     "token_type": "Bearer"}


class SmsReceiver(Receiver):
    """Twilio: POST /2010-04-01/Accounts/<sid>/Messages.json, basic auth."""

    def __init__(self, sid="AC0123456789abcdef", auth_token="secret", port=0):
        super().__init__(port)
        self.sid = sid
        self.auth = "Basic " + base64.b64encode(
            f"{sid}:{auth_token}".encode()).decode()

    def handle(self, path, headers, body):
        if path != f"/2010-04-01/Accounts/{self.sid}/Messages.json":
            return 404, {"code": 20404, "message": "not found"}
        if headers.get("Authorization") != self.auth:
            return 401, {"code": 20003, "message": "Authenticate"}
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        with self.lock:
            self.requests.append({"key": headers.get("X-Feira-Idempotency-Key"),
                                  "form": form, "at": time.time()})
            n = len(self.requests)
        if self.injected_failure():
            return self.fail_status, {"code": 20500, "message": "unavailable"}
        return 201, {"sid": f"SM{n:032d}", "status": "queued",
                     "to": form.get("To"), "body": form.get("Body")}


def make_service_account(directory, token_uri, project="feira-test"):
    """An RSA key and a service-account JSON like Google's; returns
    (path of the JSON, public key PEM)."""
    key = os.path.join(directory, "sa-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", key], check=True,
                   capture_output=True)
    pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"],
                         check=True, capture_output=True, text=True).stdout
    with open(key) as f:
        private = f.read()
    sa = {"type": "service_account", "project_id": project,
          "private_key_id": "test-key-1", "private_key": private,
          "client_email": f"worker@{project}.iam.gserviceaccount.com",
          "client_id": "1", "token_uri": token_uri}
    path = os.path.join(directory, "service-account.json")
    with open(path, "w") as f:
        json.dump(sa, f)
    return path, pub


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "fcm":
        with open(sys.argv[3]) as f:
            r = FcmReceiver(f.read(), port=port)
    else:
        r = SmsReceiver(port=port)
    r.start()
    print(f"{kind} receiver on {r.url}", flush=True)
    try:
        while True:
            time.sleep(0.2)
            # the benchmark reads the counts from this file
            if len(sys.argv) > 4:
                with open(sys.argv[4] + ".tmp", "w") as f:
                    json.dump({"requests": len(r.requests),
                               "delivered": len(getattr(r, "delivered", {}))}, f)
                os.replace(sys.argv[4] + ".tmp", sys.argv[4])
    except KeyboardInterrupt:
        pass
