"""feira_services on the real-time channels: every transition of a request
reaches a WebSocket subscribed to request:<id> (the same event, with the
same id, as on Kafka feira.requests), and the offer reaches the offered
provider on user:<provider id>."""

from requestutil import (accept, client, complete, create_request, events,
                         new_category, provider, start)
from wsclient import WS


def subscribe(ws, channel, since=None):
    msg = {"type": "subscribe", "channel": channel}
    if since is not None:
        msg["since"] = since
    ws.send_json(msg)


def next_events(ws, count, timeout=10):
    out = []
    while len(out) < count:
        msg = ws.recv_json(timeout=timeout, skip=("subscribed", "pong"))
        assert msg["type"] == "event", msg
        out.append(msg)
    return out


def test_transitions_reach_the_request_channel(nginx):
    cat = new_category(nginx)
    p = provider(nginx, cat, -23.551, -46.633)
    c = client(nginx)
    rid = create_request(nginx, c, cat)["id"]
    channel = f"request:{rid}"

    cw = WS.connect(nginx.port, c["token"])
    pw = WS.connect(nginx.port, p["token"])
    try:
        # what was published before subscribing is replayed from 0
        subscribe(cw, channel, since=0)
        created, offered = next_events(cw, 2)
        assert created["channel"] == channel
        assert created["event"]["type"] == "request.created"
        assert created["event"]["data"]["request_id"] == rid
        assert offered["event"]["type"] == "request.offered"
        assert offered["event"]["data"]["provider_ids"] == [p["id"]]

        # the offer on the provider's own channel
        subscribe(pw, f"user:{p['id']}", since=0)
        (mine,) = next_events(pw, 1)
        assert mine["channel"] == f"user:{p['id']}"
        assert mine["event"] == offered["event"]

        accept(nginx, p, rid)
        start(nginx, p, rid)
        complete(nginx, p, rid)
        live = next_events(cw, 3)
        assert [m["event"]["type"] for m in live] == [
            "request.accepted", "request.started", "request.completed"]
        assert [m["seq"] for m in live] == [3, 4, 5]
        for m, (frm, to) in zip(live, [("open", "accepted"),
                                       ("accepted", "in_progress"),
                                       ("in_progress", "completed")]):
            d = m["event"]["data"]
            assert (d["from"], d["to"]) == (frm, to)
            assert d["provider_id"] == p["id"] and d["client_id"] == c["id"]
            assert d["price"] == {"amount": 8000, "currency": "BRL"}

        # the very events of the log: same ids, same order
        logged = events(rid, 5)
        assert [e["id"] for e in logged] == \
            [m["event"]["id"] for m in [created, offered] + live]
    finally:
        cw.shutdown()
        pw.shutdown()
