"""feira_users: profiles, preferences, devices, reviews and ratings, and
every bad input and access of issue 4, against the real stack.

Requests belong to the services module; these tests put completed requests
straight into MongoDB, in the shape docs/events.md gives them."""

import datetime
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import bson
import pymongo
import pytest
from confluent_kafka import Consumer

from authutil import login_admin, register
from feira import Nginx, request, service, stack_env, wait_for

UNKNOWN = "0123456789abcdef01234567"


def db():
    return pymongo.MongoClient(stack_env()["MONGO_URI"]).get_database()


def call(n, method, path, body=None, token=None, headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    return request(n.port, method, path, body=body, headers=hdrs)


def assert_problem(r, status, field=None):
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    text = r.body.decode()
    for leak in ("Mongo", "mongo", "E11000", "bson", "$ne", "ferret"):
        assert leak not in text, text
    if field is not None:
        assert field in [e["field"] for e in problem.get("errors", [])], text
    return problem


def user_doc(uid):
    return db().users.find_one({"_id": bson.ObjectId(uid)})


def seed_request(client_id, provider_id, status="completed"):
    """A request as feira_services stores it (docs/events.md)."""
    doc = {"_id": bson.ObjectId(), "client_id": bson.ObjectId(client_id),
           "category": "cleaning", "status": status,
           "description": "seeded by test_users"}
    if provider_id:
        doc["provider_id"] = bson.ObjectId(provider_id)
    db().requests.insert_one(doc)
    return str(doc["_id"])


def people(n, *roles):
    return [register(n, role=role) for role in roles]


def no_secrets(text):
    for secret in ("password", "argon2", "email_lc"):
        assert secret not in text, text


# profiles: who sees what

def test_profile_views_and_who_sees_private_fields(nginx):
    a, b, c = people(nginx, "client", "provider", "client")
    ida, idb = a["user"]["id"], b["user"]["id"]

    # A reading A's own private fields works
    r = nginx.get(f"/v1/users/{ida}", token=a["access_token"])
    assert r.status == 200, r.body
    me = r.json()
    assert me["id"] == ida and me["role"] == "client"
    assert me["email"] == a["email"] and me["name"] == "Test"
    assert me["rating_avg"] == 0 and me["rating_count"] == 0
    assert me["bio"] is None and me["avatar_url"] is None
    assert me["created_at"].endswith("Z")
    assert "skills" not in me  # a client has none
    no_secrets(r.body.decode())

    # a stranger sees the public view only
    for who in (b, c):
        r = nginx.get(f"/v1/users/{ida}", token=who["access_token"])
        assert r.status == 200
        assert set(r.json()) == {"id", "name", "role", "bio", "avatar_url",
                                 "rating_avg", "rating_count", "created_at"}
        no_secrets(r.body.decode())

    # the counterpart of a request they share sees e-mail and phone
    seed_request(ida, idb, status="accepted")
    r = nginx.get(f"/v1/users/{ida}", token=b["access_token"])
    assert r.json()["email"] == a["email"] and "phone" in r.json()
    r = nginx.get(f"/v1/users/{idb}", token=a["access_token"])
    assert r.json()["email"] == b["email"]
    assert r.json()["skills"] == [] and r.json()["service_area"] is None
    # and nobody else does
    r = nginx.get(f"/v1/users/{ida}", token=c["access_token"])
    assert "email" not in r.json()

    # an admin sees everything but the hash
    admin = login_admin(nginx)
    r = nginx.get(f"/v1/users/{ida}", token=admin["access_token"])
    assert r.json()["email"] == a["email"]
    no_secrets(r.body.decode())

    # HEAD answers like GET, without a body
    r = call(nginx, "HEAD", f"/v1/users/{ida}", token=c["access_token"])
    assert r.status == 200 and r.body == b""


def test_profile_needs_a_token(nginx):
    (a,) = people(nginx, "client")
    r = nginx.get(f"/v1/users/{a['user']['id']}")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert_problem(nginx.post(f"/v1/requests/{UNKNOWN}/reviews",
                              {"rating": 5}), 401)


def test_patch_is_visible_in_the_next_get(nginx):
    (a,) = people(nginx, "client")
    ida, tok = a["user"]["id"], a["access_token"]
    before = user_doc(ida)

    r = call(nginx, "PATCH", f"/v1/users/{ida}",
             {"name": "Ana Souza", "bio": "Olá, eu limpo bem.",
              "phone": "+55 11 91234-5678",
              "avatar_url": "https://cdn.example.com/ana.png"}, token=tok)
    assert r.status == 200, r.body
    body = r.json()
    assert body["name"] == "Ana Souza" and body["bio"] == "Olá, eu limpo bem."
    assert body["phone"] == "+55 11 91234-5678"
    no_secrets(r.body.decode())

    # at once, from the store, with the rest untouched
    r = nginx.get(f"/v1/users/{ida}", token=tok)
    assert r.json() == body
    after = user_doc(ida)
    for key in ("email", "email_lc", "password_hash", "role", "created_at",
                "rating_avg", "rating_count"):
        assert after[key] == before[key], key
    assert after["updated_at"] >= before["updated_at"]

    # null removes an optional field; the name cannot be removed
    r = call(nginx, "PATCH", f"/v1/users/{ida}", {"bio": None}, token=tok)
    assert r.status == 200 and r.json()["bio"] is None
    assert "bio" not in user_doc(ida)
    assert_problem(call(nginx, "PATCH", f"/v1/users/{ida}", {"name": None},
                        token=tok), 400, "name")
    assert user_doc(ida)["name"] == "Ana Souza"


def test_provider_only_fields(nginx):
    a, p = people(nginx, "client", "provider")
    area = {"label": "Zona Sul", "lat": -23.625, "lng": -46.5,
            "radius_km": 12.5}
    r = call(nginx, "PATCH", f"/v1/users/{p['user']['id']}",
             {"skills": ["limpeza", "passar roupa"], "service_area": area},
             token=p["access_token"])
    assert r.status == 200, r.body
    assert r.json()["skills"] == ["limpeza", "passar roupa"]
    assert r.json()["service_area"] == area
    # public: the marketplace shows what a provider does and where
    r = nginx.get(f"/v1/users/{p['user']['id']}", token=a["access_token"])
    assert r.json()["service_area"] == area and "email" not in r.json()

    # a client has neither: 400, and nothing written
    before = user_doc(a["user"]["id"])
    r = call(nginx, "PATCH", f"/v1/users/{a['user']['id']}",
             {"name": "Changed", "skills": ["x"]}, token=a["access_token"])
    assert_problem(r, 400, "skills")
    assert user_doc(a["user"]["id"]) == before


# broken object-level authorization

def test_another_users_profile_preferences_devices_are_403(nginx):
    a, b = people(nginx, "client", "provider")
    ida, idb, tok = a["user"]["id"], b["user"]["id"], a["access_token"]
    r = nginx.post(f"/v1/users/{idb}/devices",
                   {"platform": "android", "token": f"b-{uuid.uuid4()}"},
                   token=b["access_token"])
    assert r.status == 201
    device = r.json()["id"]
    before = user_doc(idb)
    devices_before = list(db().devices.find({"user_id": bson.ObjectId(idb)}))

    attempts = [
        ("PATCH", f"/v1/users/{idb}", {"name": "pwned"}),
        ("PATCH", f"/v1/users/{idb}", {"role": "admin"}),
        ("GET", f"/v1/users/{idb}/preferences", None),
        ("PUT", f"/v1/users/{idb}/preferences",
         {"notifications": {"email": False, "sms": False, "push": False},
          "language": "en"}),
        ("GET", f"/v1/users/{idb}/devices", None),
        ("POST", f"/v1/users/{idb}/devices",
         {"platform": "ios", "token": "attacker"}),
        ("DELETE", f"/v1/users/{idb}/devices/{device}", None),
        # a device id of B's under A's own path is simply not A's
    ]
    for method, path, body in attempts:
        assert_problem(call(nginx, method, path, body, token=tok), 403)

    r = call(nginx, "DELETE", f"/v1/users/{ida}/devices/{device}", token=tok)
    assert_problem(r, 404)

    assert user_doc(idb) == before
    assert list(db().devices.find({"user_id": bson.ObjectId(idb)})) == \
        devices_before
    assert db().devices.count_documents({"token": "attacker"}) == 0


def test_admin_reads_and_edits_any_profile(nginx):
    (a,) = people(nginx, "client")
    ida = a["user"]["id"]
    admin = login_admin(nginx)
    tok = admin["access_token"]

    r = call(nginx, "PATCH", f"/v1/users/{ida}", {"name": "Moderated"},
             token=tok)
    assert r.status == 200 and r.json()["name"] == "Moderated"
    assert r.json()["email"] == a["email"]
    assert nginx.get(f"/v1/users/{ida}",
                     token=a["access_token"]).json()["name"] == "Moderated"

    prefs = {"notifications": {"email": False, "sms": True, "push": True},
             "language": "en", "quiet_hours": None}
    r = call(nginx, "PUT", f"/v1/users/{ida}/preferences", prefs, token=tok)
    assert r.status == 200 and r.json() == prefs
    assert nginx.get(f"/v1/users/{ida}/preferences",
                     token=tok).json() == prefs

    # an admin is made by configuration only, never through the API
    assert_problem(call(nginx, "PATCH", f"/v1/users/{ida}",
                        {"role": "admin"}, token=tok), 400, "role")
    assert user_doc(ida)["role"] == "client"

    # unknown users are 404 for whoever may ask
    assert_problem(call(nginx, "PATCH", f"/v1/users/{UNKNOWN}",
                        {"name": "x"}, token=tok), 404)
    assert_problem(nginx.get(f"/v1/users/{UNKNOWN}/preferences", token=tok),
                   404)


# mass assignment and hostile bodies: 400, and nothing changes

@pytest.mark.parametrize("body, field", [
    ({"role": "admin"}, "role"),
    ({"rating_avg": 5}, "rating_avg"),
    ({"rating_count": 1000}, "rating_count"),
    ({"email": "evil@example.com"}, "email"),
    ({"_id": UNKNOWN}, "_id"),
    ({"password_hash": "$argon2id$v=19$x"}, "password_hash"),
    ({"preferences": {}}, "preferences"),
    ({"name": "ok", "role": "admin"}, "role"),
    ({"name": "ok", "rating_avg": 5.0}, "rating_avg"),
    ({"nickname": "x"}, "nickname"),
    ({"$set": {"role": "admin"}}, "$set"),
    ({"name.first": "x"}, "name.first"),
    ({"name": {"$ne": None}}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 7}, "name"),
    ({"bio": "b" * 501}, "bio"),
    ({"bio": ["a"]}, "bio"),
    ({"phone": "call me maybe"}, "phone"),
    ({"phone": {"$gt": ""}}, "phone"),
    ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
    ({"avatar_url": "https://" + "a" * 2100}, "avatar_url"),
    ({"skills": ["x"] * 21}, "skills"),
    ({"skills": [{"$ne": 1}]}, "skills"),
    ({"skills": ["s" * 51]}, "skills"),
    ({"service_area": {"lat": 91, "lng": 0, "radius_km": 1}},
     "service_area.lat"),
    ({"service_area": {"lat": 0, "lng": 0, "radius_km": 1, "$where": "1"}},
     "service_area"),
    ({}, ""),
])
def test_bad_patch_is_400_and_changes_nothing(nginx, body, field):
    (p,) = people(nginx, "provider")
    before = user_doc(p["user"]["id"])
    r = call(nginx, "PATCH", f"/v1/users/{p['user']['id']}", body,
             token=p["access_token"])
    assert_problem(r, 400, field)
    assert user_doc(p["user"]["id"]) == before


def test_bodies_that_are_not_json(nginx):
    (a,) = people(nginx, "client")
    path, tok = f"/v1/users/{a['user']['id']}", a["access_token"]
    before = user_doc(a["user"]["id"])
    assert_problem(call(nginx, "PATCH", path, '{"name":"x"}', token=tok,
                        headers={"Content-Type": "text/plain"}), 415)
    assert_problem(call(nginx, "PATCH", path, "{not json", token=tok,
                        headers={"Content-Type": "application/json"}), 400)
    assert_problem(call(nginx, "PATCH", path, '{"name":"a","name":"b"}',
                        token=tok,
                        headers={"Content-Type": "application/json"}), 400)
    assert_problem(call(nginx, "PATCH", path, '["name"]', token=tok,
                        headers={"Content-Type": "application/json"}), 400)
    assert_problem(call(nginx, "PATCH", path, {"bio": "x" * 70000},
                        token=tok), 413)
    assert user_doc(a["user"]["id"]) == before


def test_bad_ids_unknown_ids_routes_and_methods(nginx):
    (a,) = people(nginx, "client")
    ida, tok = a["user"]["id"], a["access_token"]

    for path in ("/v1/users/zzz", "/v1/users/123",
                 f"/v1/users/{ida}0", "/v1/users/%7B%22$ne%22:1%7D",
                 "/v1/users/zzz/preferences", "/v1/users/zzz/reviews"):
        assert_problem(nginx.get(path, token=tok), 400, "id")
    assert_problem(call(nginx, "DELETE", f"/v1/users/{ida}/devices/nope",
                        token=tok), 400, "device_id")

    assert_problem(nginx.get(f"/v1/users/{UNKNOWN}", token=tok), 404)
    assert_problem(nginx.get(f"/v1/users/{UNKNOWN}/reviews", token=tok), 404)
    assert_problem(call(nginx, "DELETE",
                        f"/v1/users/{ida}/devices/{UNKNOWN}", token=tok), 404)

    for path in ("/v1/users/", f"/v1/users/{ida}/", f"/v1/users/{ida}/x",
                 f"/v1/users/{ida}/devices/{UNKNOWN}/x"):
        assert_problem(nginx.get(path, token=tok), 404)

    for method, path, allow in (
            ("POST", f"/v1/users/{ida}", "GET, HEAD, PATCH"),
            ("DELETE", f"/v1/users/{ida}/preferences", "GET, HEAD, PUT"),
            ("PUT", f"/v1/users/{ida}/devices", "GET, HEAD, POST"),
            ("GET", f"/v1/users/{ida}/devices/{UNKNOWN}", "DELETE"),
            ("POST", f"/v1/users/{ida}/reviews", "GET, HEAD"),
            ("GET", f"/v1/requests/{UNKNOWN}/reviews", "POST")):
        r = call(nginx, method, path, token=tok)
        assert_problem(r, 405)
        assert r.headers["allow"] == allow


# preferences: the shape the notification worker reads

def test_preferences_defaults_put_and_stored_shape(nginx):
    (a,) = people(nginx, "client")
    ida, tok = a["user"]["id"], a["access_token"]
    path = f"/v1/users/{ida}/preferences"

    r = nginx.get(path, token=tok)
    assert r.status == 200
    assert r.json() == {"notifications": {"email": True, "sms": False,
                                          "push": True},
                        "language": "pt-BR", "quiet_hours": None}

    prefs = {"notifications": {"email": False, "sms": True, "push": True},
             "language": "en",
             "quiet_hours": {"start": "22:00", "end": "07:30",
                             "tz": "America/Sao_Paulo"}}
    r = call(nginx, "PUT", path, prefs, token=tok)
    assert r.status == 200 and r.json() == prefs
    assert nginx.get(path, token=tok).json() == prefs
    # exactly docs/events.md's document, nothing more
    assert user_doc(ida)["preferences"] == prefs

    # PUT replaces: without quiet_hours there are none
    prefs2 = {"notifications": {"email": True, "sms": False, "push": False},
              "language": "pt-BR"}
    r = call(nginx, "PUT", path, prefs2, token=tok)
    assert r.json()["quiet_hours"] is None
    assert user_doc(ida)["preferences"] == prefs2


@pytest.mark.parametrize("body, field", [
    ({"language": "en"}, "notifications"),
    ({"notifications": {"email": True, "sms": False}, "language": "en"},
     "notifications.push"),
    ({"notifications": {"email": "yes", "sms": False, "push": True},
      "language": "en"}, "notifications.email"),
    ({"notifications": {"email": True, "sms": False, "push": True,
                        "$where": "1"}, "language": "en"}, "notifications"),
    ({"notifications": {"email": True, "sms": False, "push": True},
      "language": "xx"}, "language"),
    ({"notifications": {"email": True, "sms": False, "push": True},
      "language": "en", "quiet_hours": {"start": "25:00", "end": "07:00",
                                        "tz": "UTC"}}, "quiet_hours.start"),
    ({"notifications": {"email": True, "sms": False, "push": True},
      "language": "en", "quiet_hours": {"start": "22:00", "end": "07:00",
                                        "tz": "../../etc/passwd"}},
     "quiet_hours.tz"),
    ({"notifications": {"email": True, "sms": False, "push": True},
      "language": "en", "theme": "dark"}, "theme"),
])
def test_bad_preferences_are_400_and_change_nothing(nginx, body, field):
    (a,) = people(nginx, "client")
    before = user_doc(a["user"]["id"])
    r = call(nginx, "PUT", f"/v1/users/{a['user']['id']}/preferences", body,
             token=a["access_token"])
    assert_problem(r, 400, field)
    assert user_doc(a["user"]["id"]) == before


# devices

def test_devices_are_deduplicated_moved_and_removed(nginx):
    a, b = people(nginx, "client", "client")
    ida, idb = a["user"]["id"], b["user"]["id"]
    token = f"fcm-{uuid.uuid4().hex}"

    r = nginx.post(f"/v1/users/{ida}/devices",
                   {"platform": "android", "token": token},
                   token=a["access_token"])
    assert r.status == 201, r.body
    device = r.json()
    assert device["platform"] == "android" and device["token"] == token

    # the same token again: the same device, 200, no copy
    r = nginx.post(f"/v1/users/{ida}/devices",
                   {"platform": "android", "token": token},
                   token=a["access_token"])
    assert r.status == 200 and r.json() == device
    assert db().devices.count_documents({"token": token}) == 1
    r = nginx.get(f"/v1/users/{ida}/devices", token=a["access_token"])
    assert r.json() == {"items": [device], "next_cursor": None}

    # another user signs in on that device: the token moves to them
    r = nginx.post(f"/v1/users/{idb}/devices",
                   {"platform": "android", "token": token},
                   token=b["access_token"])
    assert r.status == 201 and r.json()["id"] == device["id"]
    stored = list(db().devices.find({"token": token}))
    assert len(stored) == 1 and str(stored[0]["user_id"]) == idb
    assert nginx.get(f"/v1/users/{ida}/devices",
                     token=a["access_token"]).json()["items"] == []

    # removal by its owner only
    path = f"/v1/users/{ida}/devices/{device['id']}"
    assert_problem(call(nginx, "DELETE", path, token=a["access_token"]), 404)
    path = f"/v1/users/{idb}/devices/{device['id']}"
    r = call(nginx, "DELETE", path, token=b["access_token"])
    assert r.status == 204 and r.body == b""
    assert db().devices.count_documents({"token": token}) == 0
    assert_problem(call(nginx, "DELETE", path, token=b["access_token"]), 404)


@pytest.mark.parametrize("body, field", [
    ({"platform": "symbian", "token": "t"}, "platform"),
    ({"platform": "ios"}, "token"),
    ({"platform": "ios", "token": ""}, "token"),
    ({"platform": "ios", "token": "a b"}, "token"),
    ({"platform": "ios", "token": "t" * 1025}, "token"),
    ({"platform": "ios", "token": {"$ne": ""}}, "token"),
    ({"platform": "ios", "token": "t", "user_id": UNKNOWN}, "user_id"),
])
def test_bad_devices_are_400_and_store_nothing(nginx, body, field):
    (a,) = people(nginx, "client")
    r = nginx.post(f"/v1/users/{a['user']['id']}/devices", body,
                   token=a["access_token"])
    assert_problem(r, 400, field)
    assert db().devices.count_documents(
        {"user_id": bson.ObjectId(a["user"]["id"])}) == 0


def test_devices_per_user_are_bounded(nginx_factory):
    n = nginx_factory(conf="feira_users_devices_max 2;\n")
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    (a,) = people(n, "client")
    path = f"/v1/users/{a['user']['id']}/devices"
    for i in range(2):
        r = n.post(path, {"platform": "web", "token": f"w{i}-{uuid.uuid4()}"},
                   token=a["access_token"])
        assert r.status == 201
    r = n.post(path, {"platform": "web", "token": f"w3-{uuid.uuid4()}"},
               token=a["access_token"])
    assert_problem(r, 409)
    assert len(n.get(path, token=a["access_token"]).json()["items"]) == 2


# reviews

def review(n, who, request_id, rating, comment=None):
    body = {"rating": rating}
    if comment is not None:
        body["comment"] = comment
    return n.post(f"/v1/requests/{request_id}/reviews", body,
                  token=who["access_token"])


def test_each_side_reviews_the_other_once(nginx):
    c, p = people(nginx, "client", "provider")
    idc, idp = c["user"]["id"], p["user"]["id"]
    rid = seed_request(idc, idp)

    r = review(nginx, c, rid, 4, "pontual e cuidadoso")
    assert r.status == 201, r.body
    rev = r.json()
    assert rev["request_id"] == rid and rev["reviewer_id"] == idc
    assert rev["reviewee_id"] == idp and rev["reviewer_role"] == "client"
    assert rev["rating"] == 4 and rev["comment"] == "pontual e cuidadoso"

    r = review(nginx, p, rid, 5)
    assert r.status == 201, r.body
    assert r.json()["reviewee_id"] == idc and r.json()["comment"] == ""

    # a second review by the same side
    assert_problem(review(nginx, c, rid, 1), 409)
    assert_problem(review(nginx, p, rid, 1), 409)
    assert db().reviews.count_documents(
        {"request_id": bson.ObjectId(rid)}) == 2

    # the ratings at once, on both profiles
    r = nginx.get(f"/v1/users/{idp}", token=c["access_token"])
    assert r.json()["rating_avg"] == 4.0 and r.json()["rating_count"] == 1
    r = nginx.get(f"/v1/users/{idc}", token=c["access_token"])
    assert r.json()["rating_avg"] == 5.0 and r.json()["rating_count"] == 1
    doc = user_doc(idp)
    assert doc["rating_avg"] == 4.0 and doc["rating_count"] == 1

    r = nginx.get(f"/v1/users/{idp}/reviews", token=c["access_token"])
    assert r.status == 200
    assert r.json() == {"items": [rev], "next_cursor": None}


def test_who_may_review_what(nginx):
    c, p, stranger = people(nginx, "client", "provider", "client")
    idc, idp = c["user"]["id"], p["user"]["id"]
    admin = login_admin(nginx)

    done = seed_request(idc, idp)
    # A reviewing a request A was not part of
    assert_problem(review(nginx, stranger, done, 5), 403)
    assert_problem(review(nginx, admin, done, 5), 403)
    # not completed yet, or never
    for status in ("open", "accepted", "in_progress", "cancelled"):
        rid = seed_request(idc, idp if status != "open" else None,
                           status=status)
        problem = assert_problem(review(nginx, c, rid, 5), 409)
        assert status in problem["detail"]
    # one user on both sides is no review
    assert_problem(review(nginx, c, seed_request(idc, idc), 5), 403)
    # unknown, and not an id
    assert_problem(review(nginx, c, UNKNOWN, 5), 404)
    assert_problem(review(nginx, c, "nope", 5), 400, "request_id")
    assert_problem(review(nginx, c, done.upper()[:23], 5), 400, "request_id")

    assert db().reviews.count_documents({"reviewer_id": {"$in": [
        bson.ObjectId(idc), bson.ObjectId(stranger["user"]["id"])]}}) == 0
    assert nginx.get(f"/v1/users/{idp}",
                     token=c["access_token"]).json()["rating_count"] == 0


@pytest.mark.parametrize("body, field", [
    ({}, "rating"),
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": 4.5}, "rating"),
    ({"rating": "5"}, "rating"),
    ({"rating": True}, "rating"),
    ({"rating": {"$gt": 0}}, "rating"),
    ({"rating": 5, "comment": "c" * 1001}, "comment"),
    ({"rating": 5, "comment": {"$ne": ""}}, "comment"),
    ({"rating": 5, "reviewee_id": UNKNOWN}, "reviewee_id"),
    ({"rating": 5, "$inc": {"rating_count": 1}}, "$inc"),
])
def test_bad_reviews_are_400_and_store_nothing(nginx, body, field):
    c, p = people(nginx, "client", "provider")
    rid = seed_request(c["user"]["id"], p["user"]["id"])
    r = nginx.post(f"/v1/requests/{rid}/reviews", body,
                   token=c["access_token"])
    assert_problem(r, 400, field)
    assert db().reviews.count_documents(
        {"request_id": bson.ObjectId(rid)}) == 0


def test_concurrent_reviews_leave_an_exact_average(nginx_factory):
    n = nginx_factory(workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    (p,) = people(n, "provider")
    idp = p["user"]["id"]
    clients = [register(n, role="client") for _ in range(20)]
    jobs = [(c, seed_request(c["user"]["id"], idp), 1 + i % 5)
            for i, c in enumerate(clients)]
    jobs[0] = (jobs[0][0], jobs[0][1], 2)  # an average that is not round

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(
            lambda j: review(n, j[0], j[1], j[2], f"job {j[1]}"), jobs))
    assert [r.status for r in results] == [201] * 20, \
        [r.body for r in results if r.status != 201]

    total = sum(j[2] for j in jobs)
    r = n.get(f"/v1/users/{idp}", token=p["access_token"])
    assert r.json()["rating_count"] == 20
    assert r.json()["rating_avg"] == total / 20

    # the ledger: one entry per review, seq 1..20, running sums that add up
    ledger = list(db().reviews.find({"reviewee_id": bson.ObjectId(idp)},
                                    sort=[("seq", 1)]))
    assert [e["seq"] for e in ledger] == list(range(1, 21))
    running = 0
    for e in ledger:
        running += e["rating"]
        assert e["rating_sum"] == running
    # the copy in users, which other modules read, settles on the same
    doc = wait_for(lambda: (lambda d: d if d.get("rating_count") == 20
                            else None)(user_doc(idp)),
                   timeout=5, what="the rating copy in users")
    assert doc["rating_avg"] == total / 20 and doc["rating_sum"] == total


def test_the_same_review_sent_at_once_is_stored_once(nginx):
    c, p = people(nginx, "client", "provider")
    rid = seed_request(c["user"]["id"], p["user"]["id"])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: review(nginx, c, rid, 3),
                                range(8)))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 7, statuses
    assert db().reviews.count_documents(
        {"request_id": bson.ObjectId(rid)}) == 1
    r = nginx.get(f"/v1/users/{p['user']['id']}", token=c["access_token"])
    assert r.json()["rating_count"] == 1 and r.json()["rating_avg"] == 3.0


def test_reviews_are_paginated_with_a_cursor(nginx):
    c, p = people(nginx, "client", "provider")
    idp = p["user"]["id"]
    # 25 ledger entries, as the module writes them
    docs, total = [], 0
    for i in range(25):
        total += 1 + i % 5
        docs.append({"_id": bson.ObjectId(), "request_id": bson.ObjectId(),
                     "reviewer_id": bson.ObjectId(),
                     "reviewee_id": bson.ObjectId(idp),
                     "reviewer_role": "client", "rating": 1 + i % 5,
                     "comment": f"r{i}", "created_at": datetime.datetime(
                         2026, 1, 1, tzinfo=datetime.timezone.utc),
                     "seq": i + 1, "rating_sum": total})
    db().reviews.insert_many(docs)

    seen, cursor, pages = [], None, 0
    while True:
        path = f"/v1/users/{idp}/reviews?limit=10"
        if cursor:
            path += f"&cursor={cursor}"
        r = nginx.get(path, token=c["access_token"])
        assert r.status == 200, r.body
        page = r.json()
        pages += 1
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    ids = [x["id"] for x in seen]
    assert ids == sorted((str(d["_id"]) for d in docs), reverse=True)
    assert len(set(ids)) == 25

    r = nginx.get(f"/v1/users/{idp}/reviews", token=c["access_token"])
    assert len(r.json()["items"]) == 20  # the default limit
    r = nginx.get(f"/v1/users/{idp}/reviews?limit=25",
                  token=c["access_token"])
    assert len(r.json()["items"]) == 25 and r.json()["next_cursor"] is None
    r = nginx.get(f"/v1/users/{idp}", token=c["access_token"])
    assert r.json()["rating_count"] == 25
    assert r.json()["rating_avg"] == total / 25

    for query, field in (("limit=0", "limit"), ("limit=101", "limit"),
                         ("limit=abc", "limit"), ("limit=", "limit"),
                         ("cursor=zzz", "cursor"),
                         ("cursor=%7B%22%24gt%22%3A%22%22%7D", "cursor"),
                         (f"cursor={UNKNOWN}0", "cursor")):
        assert_problem(nginx.get(f"/v1/users/{idp}/reviews?{query}",
                                 token=c["access_token"]), 400, field)


def test_a_new_review_is_published_to_kafka(nginx):
    c, p = people(nginx, "client", "provider")
    rid = seed_request(c["user"]["id"], p["user"]["id"])
    r = review(nginx, c, rid, 5, "ótimo")
    assert r.status == 201
    rev = r.json()

    consumer = Consumer({"bootstrap.servers": stack_env()["KAFKA_BROKERS"],
                         "group.id": f"test-users-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest",
                         "enable.auto.commit": False,
                         "topic.metadata.refresh.interval.ms": 1000})
    consumer.subscribe(["feira.reviews"])
    found = None
    try:
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            event = json.loads(msg.value())
            if event.get("id") == rev["id"]:
                found = (msg.key().decode(), event)
    finally:
        consumer.close()

    assert found is not None, "review.created did not arrive"
    key, event = found
    assert key == p["user"]["id"]
    assert event["type"] == "review.created"
    assert event["occurred_at"] == rev["created_at"]
    assert event["actor"] == {"id": c["user"]["id"], "role": "client"}
    assert event["data"] == {"review_id": rev["id"], "request_id": rid,
                             "reviewer_id": c["user"]["id"],
                             "reviewee_id": p["user"]["id"], "rating": 5,
                             "comment": "ótimo"}


def test_without_feira_auth_require_it_fails_closed(nginx_factory):
    n = nginx_factory(server_conf="location /open/users/ { feira_users; }\n"
                                  "location ~ ^/open/r/[^/]+/reviews$ "
                                  "{ feira_users_reviews; }\n")
    assert_problem(n.get(f"/open/users/{UNKNOWN}"), 500)
    assert_problem(n.post(f"/open/r/{UNKNOWN}/reviews", {"rating": 5}), 500)
    assert "needs \"feira_auth_require\"" in n.log()


# faults

def test_store_down_is_503_and_recovers(nginx):
    c, p = people(nginx, "client", "provider")
    idp = p["user"]["id"]
    rid = seed_request(c["user"]["id"], idp)

    service("stop", "mongo")
    try:
        for r in (nginx.get(f"/v1/users/{idp}", token=c["access_token"]),
                  call(nginx, "PATCH", f"/v1/users/{idp}", {"bio": "x"},
                       token=p["access_token"]),
                  review(nginx, c, rid, 5)):
            assert_problem(r, 503)
            assert r.json()["detail"] == "the user store is unavailable"
    finally:
        service("start", "mongo")

    r = wait_for(lambda: (lambda x: x if x.status == 201 else None)(
        review(nginx, c, rid, 5)), timeout=30, what="a review after restart")
    assert r.json()["reviewee_id"] == idp
    r = nginx.get(f"/v1/users/{idp}", token=c["access_token"])
    assert r.json()["rating_count"] == 1


# configuration

@pytest.mark.parametrize("conf, message", [
    ("location ~ ^/u/ { feira_users; }", "must be in a prefix location"),
    ("location = /u/x { feira_users; }", "must be in a prefix location"),
    ("location /u { feira_users; }", "must be in a prefix location"),
    ("location /u/ { feira_users; feira_users; }", "is duplicate"),
    ("location /u/ { feira_users; feira_users_comment_max 0; }",
     "\"feira_users_comment_max\" must be from 1 to 10000"),
    ("location /u/ { feira_users; feira_users_devices_max 101; }",
     "\"feira_users_devices_max\" must be from 1 to 100"),
])
def test_bad_configuration_fails_nginx_t(conf, message):
    n = Nginx()
    try:
        n.add_conf("bad.conf", conf + "\n", server=True)
        r = n.test_config()
        assert r.returncode != 0
        assert message in r.stderr, r.stderr
    finally:
        n.cleanup()


def test_feira_users_without_mongo_fails_nginx_t(tmp_path):
    template = tmp_path / "nginx.conf"
    template.write_text(
        "load_module ${FEIRA_MODULES_DIR}/ngx_http_feira_common_module.so;\n"
        "load_module ${FEIRA_MODULES_DIR}/ngx_http_feira_users_module.so;\n"
        "pid ${FEIRA_NGINX_DIR}/nginx.pid;\n"
        "events {}\n"
        "http { server { listen 127.0.0.1:${FEIRA_HTTP_PORT};\n"
        "    location /v1/users/ { feira_users; } } }\n")
    n = Nginx(template=str(template))
    try:
        r = n.test_config()
        assert r.returncode != 0
        assert "need \"feira_mongo_uri\"" in r.stderr, r.stderr
    finally:
        n.cleanup()
