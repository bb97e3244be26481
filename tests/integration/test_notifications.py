"""GET /v1/notifications: the in-app inbox, to its owner only (the
notification worker writes the documents; here they are seeded)."""

import datetime

import pymongo
import pytest
from bson import ObjectId

from authutil import register
from feira import stack_env, wait_for


@pytest.fixture
def inbox(nginx):
    db = pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()
    owner, other = register(nginx), register(nginx)
    now = datetime.datetime.now(datetime.timezone.utc)
    docs = [{"_id": ObjectId(), "user_id": ObjectId(owner["user"]["id"]),
             "event_id": f"ev{i}", "channel": "inapp",
             "template": "request.accepted", "title": f"title {i}",
             "body": f"<b>body</b> {i}", "read": False, "created_at": now}
            for i in range(25)]
    db.notifications.insert_many(docs)
    db.notifications.insert_one({"_id": ObjectId(),
                                 "user_id": ObjectId(other["user"]["id"]),
                                 "event_id": "x", "channel": "inapp",
                                 "template": "t", "title": "not yours",
                                 "body": "secret", "read": False,
                                 "created_at": now})
    return nginx, owner["access_token"], other["access_token"], docs


def test_pages_newest_first_without_gaps_or_repeats(inbox):
    n, token, _, docs = inbox
    seen, cursor = [], None
    while True:
        r = n.get("/v1/notifications?limit=10"
                  + (f"&cursor={cursor}" if cursor else ""), token=token)
        assert r.status == 200, r.body
        page = r.json()
        assert page["unread_count"] == 25
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(d["_id"]) for d in reversed(docs)]
    first = n.get("/v1/notifications?limit=1", token=token).json()["items"][0]
    assert first["title"] == "title 24" and first["read"] is False
    assert first["body"] == "<b>body</b> 24"  # stored as given, JSON-escaped
    assert first["created_at"].endswith("Z")


def test_only_the_owner_sees_and_marks(inbox):
    n, token, other, docs = inbox
    theirs = n.get("/v1/notifications", token=other).json()
    assert [i["title"] for i in theirs["items"]] == ["not yours"]
    # marking someone else's ids changes nothing
    r = n.post("/v1/notifications/read",
               {"ids": [str(d["_id"]) for d in docs[:5]]}, token=other)
    assert r.status == 200 and r.json()["updated"] == 0
    assert n.get("/v1/notifications", token=token).json()["unread_count"] == 25
    assert n.get("/v1/notifications").status == 401


def test_mark_read_by_ids_up_to_and_all(inbox):
    n, token, _, docs = inbox
    r = n.post("/v1/notifications/read",
               {"ids": [str(d["_id"]) for d in docs[:3]]}, token=token)
    assert r.status == 200
    assert r.json() == {"updated": 3, "unread_count": 22}
    r = n.post("/v1/notifications/read", {"up_to": str(docs[9]["_id"])},
               token=token)
    assert r.json() == {"updated": 7, "unread_count": 15}
    unread = n.get("/v1/notifications?unread=true&limit=100",
                   token=token).json()
    assert len(unread["items"]) == 15
    assert all(not i["read"] for i in unread["items"])
    r = n.post("/v1/notifications/read", {}, token=token)
    assert r.json() == {"updated": 15, "unread_count": 0}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x",
                                   "cursor=nothex", "unread=maybe"])
def test_bad_queries_are_400(inbox, query):
    n, token, _, _ = inbox
    r = n.get(f"/v1/notifications?{query}", token=token)
    assert r.status == 400
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("body", [{"ids": ["zz"]}, {"ids": "x"},
                                  {"up_to": {"$gt": ""}}, {"ids": []},
                                  {"up_to": "0" * 24, "ids": ["0" * 24]},
                                  {"all": True}])
def test_bad_read_bodies_are_400_and_change_nothing(inbox, body):
    n, token, _, _ = inbox
    r = n.post("/v1/notifications/read", body, token=token)
    assert r.status == 400
    assert n.get("/v1/notifications", token=token).json()["unread_count"] == 25


def test_methods_and_paths(inbox):
    n, token, _, _ = inbox
    assert n.post("/v1/notifications", {}, token=token).status == 405
    assert n.get("/v1/notifications/read", token=token).status == 405
    assert n.get("/v1/notifications/other", token=token).status == 404
    assert n.get("/v1/notificationsx", token=token).status == 404
