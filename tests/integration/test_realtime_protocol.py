"""GET /v1/ws speaks RFC 6455: the handshake and its refusals, then crafted
frames byte by byte: masking, reserved bits, fragments, control frames,
UTF-8 across fragments, sizes, the close handshake, pings and silence,
and a reader too slow for what it is sent."""

import json
import struct
import time

import pytest

from feira import wait_for
from rtutil import TEST_WS, Publisher, user
from wsclient import (BINARY, CLOSE, CONT, PING, PONG, TEXT, WS, frame)


@pytest.fixture(scope="module")
def rt(request):
    from feira import Nginx
    n = Nginx()
    n.add_conf("rt.conf", TEST_WS, server=True)
    n.start()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    yield n
    n.stop()
    n.check_log()
    n.cleanup()


@pytest.fixture(scope="module")
def alice(rt):
    return user(rt)


def connect(rt, alice, path="/t/ws", **kw):
    return WS.connect(rt.port, alice[1], path=path, **kw)


def subscribe_self(ws, uid):
    ws.send_json({"type": "subscribe", "channel": f"user:{uid}"})
    msg = ws.recv_json()
    assert msg == {"type": "subscribed", "channel": f"user:{uid}",
                   "seq": msg["seq"]}, msg
    return msg


# the handshake

def test_handshake_101_and_accept(rt, alice):
    status, headers, body, ws = WS.open_raw(rt.port, token=alice[1])
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    # open_raw checked Sec-WebSocket-Accept against the key
    subscribe_self(ws, alice[0])
    ws.close()
    assert ws.expect_close() == (1000, "")
    assert ws.expect_eof()


def test_token_in_query_for_browsers(rt, alice):
    ws = WS.connect(rt.port, alice[1], query_token=True)
    subscribe_self(ws, alice[0])
    ws.shutdown()


@pytest.mark.parametrize("headers, status", [
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Version": None}, 426),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),
    ({"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),
    ({"Upgrade": None}, 426),
    ({"Upgrade": "h2c"}, 426),
    ({"Connection": "keep-alive"}, 426),
])
def test_bad_handshakes_are_refused(rt, alice, headers, status):
    got, hdrs, body, ws = WS.open_raw(rt.port, token=alice[1],
                                      headers=headers)
    assert got == status, body
    assert ws is None
    assert hdrs["content-type"] == "application/problem+json"
    if status == 426:
        assert "sec-websocket-version" in hdrs or "upgrade" in hdrs


def test_version_13_only(rt, alice):
    got, hdrs, body, _ = WS.open_raw(rt.port, token=alice[1],
                                     headers={"Sec-WebSocket-Version": "12"})
    assert got == 426
    assert hdrs["sec-websocket-version"] == "13"


def test_token_required(rt):
    got, hdrs, body, _ = WS.open_raw(rt.port)
    assert got == 401
    assert hdrs["www-authenticate"] == 'Bearer error="invalid_token"'
    got, _, _, _ = WS.open_raw(rt.port, token="not.a.token")
    assert got == 401


def test_origin_allow_list(rt, alice):
    got, _, body, _ = WS.open_raw(rt.port, path="/t/ws", token=alice[1],
                                  headers={"Origin": "https://evil.test"})
    assert got == 403, body
    got, _, _, _ = WS.open_raw(rt.port, path="/t/ws", token=alice[1])
    assert got == 403  # a list is set: Origin is required
    got, _, _, ws = WS.open_raw(rt.port, path="/t/ws", token=alice[1],
                                headers={"Origin": "https://APP.feira.test"})
    assert got == 101
    ws.shutdown()


def test_only_get(rt, alice):
    r = rt.post("/v1/ws", {"x": 1}, token=alice[1])
    assert r.status == 405


# frames

ALLOWED = {"Origin": "https://app.feira.test"}


def protocol_close(ws, code):
    got, _ = ws.expect_close()
    assert got == code
    assert ws.expect_eof()


def test_unmasked_frame_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(TEXT, b'{"type":"x"}', mask=False))
    protocol_close(ws, 1002)


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_reserved_bits_are_1002(rt, alice, rsv):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(TEXT, b"{}", rsv=rsv))
    protocol_close(ws, 1002)


def test_unknown_opcode_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(0x3, b""))
    protocol_close(ws, 1002)


def test_control_frame_of_126_bytes_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(PING, b"x" * 126))
    protocol_close(ws, 1002)


def test_fragmented_control_frame_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(PING, b"x", fin=False))
    protocol_close(ws, 1002)


def test_continuation_without_a_message_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(CONT, b"{}"))
    protocol_close(ws, 1002)


def test_fragmented_message_with_a_ping_in_the_middle(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    text = json.dumps({"type": "subscribe",
                       "channel": f"user:{alice[0]}"}).encode()
    ws.send_raw(frame(TEXT, text[:10], fin=False)
                + frame(PING, b"are you there")
                + frame(CONT, text[10:20], fin=False)
                + frame(CONT, b"", fin=False)
                + frame(CONT, text[20:]))
    op, payload = ws.recv(pong=False)
    assert (op, payload) == (PONG, b"are you there")
    assert ws.recv_json()["type"] == "subscribed"
    ws.shutdown()


def test_invalid_utf8_across_fragments_is_1007(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    # "€" is e2 82 ac; the third byte is replaced by an ASCII one
    ws.send_raw(frame(TEXT, b'{"type":"\xe2\x82', fin=False)
                + frame(CONT, b'(x"}'))
    protocol_close(ws, 1007)


def test_valid_utf8_split_across_fragments(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(TEXT, b'{"type":"caf\xc3', fin=False)
                + frame(CONT, b'\xa9"}'))
    msg = ws.recv_json()
    assert msg["type"] == "error" and msg["code"] == "unknown_type"
    ws.shutdown()


def test_oversize_message_is_1009(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(TEXT, b"x" * 1025))
    protocol_close(ws, 1009)


def test_oversize_fragmented_message_is_1009(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(TEXT, b"x" * 600, fin=False))
    ws.send_raw(frame(CONT, b"x" * 600))
    protocol_close(ws, 1009)


def test_message_at_the_limit_is_read(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    body = json.dumps({"type": "nothing", "pad": "x" * 990}).encode()
    body = body[:-2] + b"x" * (1024 - len(body)) + b'"}'
    assert len(body) == 1024
    ws.send_raw(frame(TEXT, body))
    assert ws.recv_json()["code"] == "unknown_type"
    ws.shutdown()


def test_binary_is_1003(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(BINARY, b"\x00\x01"))
    protocol_close(ws, 1003)


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000])
def test_close_with_an_invalid_code_is_1002(rt, alice, code):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(CLOSE, struct.pack("!H", code)))
    protocol_close(ws, 1002)


def test_close_with_a_one_byte_payload_is_1002(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.send_raw(frame(CLOSE, b"\x03"))
    protocol_close(ws, 1002)


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_close_handshake_echoes_the_code(rt, alice, code):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.close(code, "bye".encode())
    got, _ = ws.expect_close()
    assert got == code
    assert ws.expect_eof()


def test_close_without_a_code(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    ws.close(None)
    fin, op, payload = ws.recv_frame()
    assert (op, payload) == (CLOSE, b"")
    assert ws.expect_eof()


def test_bad_json_is_an_error_frame_not_the_end(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    for text in ["not json", "[1,2]", '{"type":3}', '{"type":"subscribe"}',
                 '{"type":"subscribe","channel":"request:nothex"}',
                 '{"type":"subscribe","channel":"user:%s","since":-1}'
                 % alice[0]]:
        ws.send(TEXT, text)
        msg = ws.recv_json()
        assert msg["type"] == "error", (text, msg)
        assert msg["code"] in ("bad_message", "bad_channel"), msg
    subscribe_self(ws, alice[0])
    ws.shutdown()


def test_server_pings_and_a_pong_keeps_it(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    op, payload = ws.recv(timeout=3, pong=False)
    assert op == PING
    ws.send(PONG, payload)
    # answered: still alive after the next round
    op, payload = ws.recv(timeout=3, pong=False)
    assert op == PING
    ws.send(PONG, payload)
    subscribe_self(ws, alice[0])
    ws.shutdown()


def test_half_sent_frame_then_silence_is_dropped(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED)
    whole = frame(TEXT, b'{"type":"subscribe","channel":"x"}')
    ws.send_raw(whole[:5])
    start = time.monotonic()
    # pings come, are not answered: dropped after interval + timeout
    with pytest.raises(Exception):
        while True:
            ws.recv(timeout=5, pong=False)
    assert time.monotonic() - start < 5
    assert "client silent after a ping" in rt.log()


def test_slow_reader_is_dropped_not_buffered(rt, alice):
    ws = connect(rt, alice, headers=ALLOWED, rcvbuf=4096)
    subscribe_self(ws, alice[0])
    pub = Publisher()
    event = {"type": "test.big", "pad": "y" * 900}
    # the client reads nothing; far more than the 8k queue and the
    # kernel's buffers is sent
    for i in range(3000):
        pub.publish(f"user:{alice[0]}", event)
        if i % 200 == 199 and "reads too slowly" in rt.log():
            break
    wait_for(lambda: "reads too slowly" in rt.log(), timeout=10,
             what="the slow reader dropped")
    assert ws.expect_eof(timeout=10)
