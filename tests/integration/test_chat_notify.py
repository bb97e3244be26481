"""A chat message to a recipient without an open WebSocket reaches the
real notification worker through feira.chat and becomes exactly one
notification, retries included; a connected recipient is not notified."""

import pytest
from bson import ObjectId

from chatutil import forget_messages, new_request, send, user
from feira import wait_for
from rtutil import redis_client
from test_notification_worker import (  # noqa: F401 (fixtures)
    fcm, fcm_module, mailpit, mailpit_strict, settle, sms, stack, topics,
    worker_factory)
from wsclient import WS


@pytest.fixture(autouse=True)
def _forget_messages():
    yield
    forget_messages()


@pytest.fixture
def chat_nginx(nginx_factory, topics):
    # the chat events of this test on its own topic, read by its worker
    n = nginx_factory(conf=f"feira_chat_topic {topics['chat']};\n",
                      workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    return n


def test_offline_recipient_gets_one_notification(chat_nginx, stack, mailpit,
                                                 worker_factory):
    n = chat_nginx
    cid, ctok = user(n, "client")
    pid, ptok = user(n, "provider")
    rid = new_request(n, (cid, ctok), accepted_by=(pid, ptok))
    provider = {"_id": ObjectId(pid)}

    # the provider is not connected: told once, though the send is retried
    first = send(n, rid, ctok, "Pode vir às 3?", client_msg_id="n-1")
    assert first.status == 201
    assert send(n, rid, ctok, "Pode vir às 3?",
                client_msg_id="n-1").status == 200

    # while the provider is connected, nothing is sent to it
    ws = WS.connect(n.port, ptok)
    wait_for(lambda: online_now(pid), timeout=10, what="provider online")
    online = send(n, rid, ctok, "Está vendo?", client_msg_id="n-2")
    assert online.status == 201
    ws.close()
    ws.shutdown()

    # gone again (its last WebSocket closed): a later message is told
    wait_for(lambda: not online_now(pid), timeout=10,
             what="provider offline")
    last = send(n, rid, ctok, "Ok, até logo", client_msg_id="n-3")
    assert last.status == 201

    worker_factory(mailpit)

    wait_for(lambda: len(stack.inbox(provider)) >= 2, timeout=60,
             what="2 notifications")
    settle()
    notes = stack.inbox(provider)
    assert sorted(x["event_id"] for x in notes) == \
        sorted([first.json()["id"], last.json()["id"]])
    assert all(x["template"] == "chat_message" for x in notes)
    assert stack.inbox({"_id": ObjectId(cid)}) == []


def online_now(user_id):
    return redis_client().zscore("feira:online", user_id) is not None
