"""A small WebSocket (RFC 6455) client on a raw socket, for the tests: the
handshake, frames crafted byte by byte (masked or not, any opcode, reserved
bits, fragments, lengths), and reading what the server sends."""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class Closed(Exception):
    """The server closed the TCP connection."""


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, key=None,
          length=None):
    """The bytes of one frame; `length` overrides the announced length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def handshake_request(path, key, headers=None, host="127.0.0.1"):
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13"]
    hdrs = dict(headers or {})
    for k, v in hdrs.items():
        if v is None:
            lines = [l for l in lines if not l.lower().startswith(k.lower() + ":")]
        else:
            lines = [l for l in lines if not l.lower().startswith(k.lower() + ":")]
            lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class WS:
    """One client connection.  connect() raises if the answer is not 101;
    use open_raw() to look at a refused handshake."""

    def __init__(self, sock, rest=b""):
        self.sock = sock
        self.buf = rest

    @classmethod
    def open_raw(cls, port, path="/v1/ws", token=None, headers=None,
                 timeout=5, query_token=False, rcvbuf=None):
        """(status, headers, body, WS or None); rcvbuf shrinks the
        client's receive buffer (before connecting, so the window is
        small too)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = dict(headers or {})
        if token and not query_token:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        if token and query_token:
            path += ("&" if "?" in path else "?") + f"access_token={token}"
        sock.sendall(handshake_request(path, key, hdrs))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0] else 0
        out = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            out[k.strip().lower()] = v.strip()
        if status != 101:
            # the body of an error: up to Content-Length
            length = int(out.get("content-length", "0"))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            return status, out, rest, None
        assert out.get("sec-websocket-accept") == accept_of(key), out
        return status, out, b"", cls(sock, rest)

    @classmethod
    def connect(cls, port, token, **kw):
        status, headers, body, ws = cls.open_raw(port, token=token, **kw)
        assert status == 101, (status, headers, body)
        return ws

    # sending

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_json(self, obj):
        self.send(TEXT, json.dumps(obj))

    def close(self, code=1000, reason=b""):
        payload = struct.pack("!H", code) + reason if code is not None else b""
        self.send(CLOSE, payload)

    # receiving

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no frame in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed()
        self.buf += chunk

    def recv_frame(self, timeout=5):
        """(fin, opcode, payload) of the next frame, unmasked by rule."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                assert not b1 & 0x80, "a server frame must not be masked"
                n = b1 & 0x7F
                off = 2
                if n == 126 and len(self.buf) >= 4:
                    n = struct.unpack("!H", self.buf[2:4])[0]
                    off = 4
                elif n == 127 and len(self.buf) >= 10:
                    n = struct.unpack("!Q", self.buf[2:10])[0]
                    off = 10
                if (b1 & 0x7F) < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        payload = self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            self._fill(deadline)

    def recv(self, timeout=5, pong=True):
        """(opcode, payload) of the next message or control frame; pings
        are answered and skipped unless pong=False."""
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == PING and pong:
                self.send(PONG, payload)
                continue
            return op, payload

    def recv_json(self, timeout=5, skip=()):
        """The next JSON message whose type is not in `skip`."""
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.recv(max(deadline - time.monotonic(), 0.001))
            assert op == TEXT, (op, payload)
            msg = json.loads(payload)
            if msg.get("type") not in skip:
                return msg

    def expect_close(self, timeout=5):
        """The server's close frame: (code, reason), then the TCP end."""
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.recv(max(deadline - time.monotonic(), 0.001))
            if op == CLOSE:
                break
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        return code, payload[2:].decode("utf-8", "replace")

    def expect_eof(self, timeout=5):
        """The TCP connection ends (the server closed it)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
                self.buf = b""
        except Closed:
            return True
        except ConnectionResetError:
            return True

    def silent(self, seconds):
        """True if nothing but pings arrives for `seconds`."""
        try:
            op, payload = self.recv(seconds)
        except socket.timeout:
            return True
        raise AssertionError(f"unexpected frame {op}: {payload[:200]!r}")

    def shutdown(self):
        try:
            self.sock.close()
        except OSError:
            pass
