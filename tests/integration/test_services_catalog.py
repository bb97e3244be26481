"""feira_services: categories (anyone reads, an admin writes) and provider
offerings, with every bad input answered 400 and nothing stored."""

import pytest
from bson import ObjectId

from authutil import register
from feira import request
from requestutil import (WEEK, admin_token, db, delete, new_category, offering,
                         patch, provider, rdb)


def assert_problem(r, status):
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status
    return r.json()


def test_categories_are_public_to_read_and_admin_to_write(nginx):
    admin = admin_token(nginx)
    slug = new_category(nginx, admin)

    # reading needs no token
    r = nginx.get(f"/v1/categories/{slug}")
    assert r.status == 200
    assert r.json()["slug"] == slug and r.json()["name"] == slug.title()
    listed = []
    cursor = ""
    while True:
        r = nginx.get(f"/v1/categories?limit=100{cursor}")
        assert r.status == 200
        listed += [c["slug"] for c in r.json()["items"]]
        if not r.json()["next_cursor"]:
            break
        cursor = f"&cursor={r.json()['next_cursor']}"
    assert slug in listed and listed == sorted(listed)

    r = patch(nginx, f"/v1/categories/{slug}",
              {"name": "Window cleaning", "description": "Glass"}, admin)
    assert r.status == 200 and r.json()["name"] == "Window cleaning"
    assert nginx.get(f"/v1/categories/{slug}").json()["description"] == \
        "Glass"

    # writes: no token 401, a client or provider 403, a duplicate 409
    c = register(nginx, role="client")["access_token"]
    r = nginx.post("/v1/categories", {"slug": "x-1", "name": "X"})
    assert r.status == 401
    assert_problem(nginx.post("/v1/categories", {"slug": "x-1", "name": "X"},
                              token=c), 403)
    assert_problem(patch(nginx, f"/v1/categories/{slug}", {"name": "Y"}, c),
                   403)
    assert_problem(delete(nginx, f"/v1/categories/{slug}", c), 403)
    assert_problem(nginx.post("/v1/categories", {"slug": slug, "name": "X"},
                              token=admin), 409)
    assert nginx.get(f"/v1/categories/{slug}").json()["name"] == \
        "Window cleaning"

    r = delete(nginx, f"/v1/categories/{slug}", admin)
    assert r.status == 204 and r.body == b""
    assert_problem(nginx.get(f"/v1/categories/{slug}"), 404)
    assert_problem(delete(nginx, f"/v1/categories/{slug}", admin), 404)
    assert_problem(nginx.get("/v1/categories/Not_A_Slug"), 404)


@pytest.mark.parametrize("body, field", [
    ({"slug": "Bad Slug", "name": "X"}, "slug"),
    ({"slug": "-lead", "name": "X"}, "slug"),
    ({"slug": "a" * 49, "name": "X"}, "slug"),
    ({"slug": {"$gt": ""}, "name": "X"}, "slug"),
    ({"name": "X"}, "slug"),
    ({"slug": "ok-slug", "name": ""}, "name"),
    ({"slug": "ok-slug", "name": "X", "owner": "me"}, "owner"),
])
def test_bad_category_is_400(nginx, body, field):
    admin = admin_token(nginx)
    before = db().categories.count_documents({})
    problem = assert_problem(nginx.post("/v1/categories", body, token=admin),
                             400)
    assert field in [e["field"] for e in problem["errors"]]
    assert db().categories.count_documents({}) == before


def test_offerings_belong_to_their_provider(nginx):
    cat = new_category(nginx)
    p = provider(nginx, online=False)
    other = provider(nginx, online=False)

    r = nginx.post("/v1/offerings", offering(cat, amount=5000, radius=7.5),
                   token=p["token"])
    assert r.status == 201, r.body
    o = r.json()
    assert o["provider_id"] == p["id"] and o["category"] == cat
    assert o["price"] == {"amount": 5000, "currency": "BRL"}
    assert o["service_radius_km"] == 7.5
    assert o["availability"] == WEEK

    # one per category
    assert_problem(nginx.post("/v1/offerings", offering(cat),
                              token=p["token"]), 409)

    # the mirror matching reads
    profile = rdb().hget(f"feira:offer:{cat}", p["id"])
    assert profile.startswith(f"{o['id']} 5000 BRL f 7.500 ")

    r = nginx.get(f"/v1/offerings?category={cat}", token=other["token"])
    assert [x["id"] for x in r.json()["items"]] == [o["id"]]
    r = nginx.get(f"/v1/offerings?provider={p['id']}", token=other["token"])
    assert [x["id"] for x in r.json()["items"]] == [o["id"]]
    assert nginx.get(f"/v1/offerings/{o['id']}",
                     token=other["token"]).json()["title"] == "Service"
    assert nginx.get(f"/v1/offerings?category={cat}").status == 401

    # only the owner changes it
    assert_problem(patch(nginx, f"/v1/offerings/{o['id']}",
                         {"title": "Mine now"}, other["token"]), 403)
    assert_problem(delete(nginx, f"/v1/offerings/{o['id']}",
                          other["token"]), 403)
    r = patch(nginx, f"/v1/offerings/{o['id']}",
              {"price": {"amount": 6500, "currency": "BRL"},
               "pricing": "hourly"}, p["token"])
    assert r.status == 200, r.body
    assert r.json()["price"]["amount"] == 6500
    assert r.json()["pricing"] == "hourly"
    assert r.json()["title"] == "Service"
    assert rdb().hget(f"feira:offer:{cat}", p["id"]).startswith(
        f"{o['id']} 6500 BRL h ")

    # the category of an offering does not change
    problem = assert_problem(patch(nginx, f"/v1/offerings/{o['id']}",
                                   {"category": "other"}, p["token"]), 400)
    assert "category" in [e["field"] for e in problem["errors"]]

    # a category with offerings is not deleted
    admin = admin_token(nginx)
    assert_problem(delete(nginx, f"/v1/categories/{cat}", admin), 409)

    r = delete(nginx, f"/v1/offerings/{o['id']}", p["token"])
    assert r.status == 204
    assert_problem(nginx.get(f"/v1/offerings/{o['id']}", token=p["token"]),
                   404)
    assert rdb().hget(f"feira:offer:{cat}", p["id"]) is None
    assert delete(nginx, f"/v1/categories/{cat}", admin).status == 204

    # clients do not sell
    c = register(nginx, role="client")["access_token"]
    assert_problem(nginx.post("/v1/offerings", offering(cat), token=c), 403)


def window(day=1, start="08:00", end="18:00"):
    return {"day": day, "start": start, "end": end}


BAD_OFFERINGS = [
    ({"price": {"amount": -100, "currency": "BRL"}}, "price.amount"),
    ({"price": {"amount": 10.5, "currency": "BRL"}}, "price.amount"),
    ({"price": {"amount": "100", "currency": "BRL"}}, "price.amount"),
    ({"price": {"amount": 100, "currency": "reais"}}, "price.currency"),
    ({"price": {"amount": 100, "currency": "brl"}}, "price.currency"),
    ({"price": 100}, "price"),
    ({"pricing": "daily"}, "pricing"),
    ({"category": "no-such-thing"}, "category"),
    ({"availability": [window(start="18:00", end="08:00")]},
     "availability[0].end"),
    ({"availability": [window(start="10:00", end="10:00")]},
     "availability[0].end"),
    ({"availability": [window(), window(day=7)]}, "availability[1].day"),
    ({"availability": [window(start="8:00")]}, "availability[0].start"),
    ({"availability": [window(end="24:30")]}, "availability[0].end"),
    ({"availability": [window(start="24:00", end="24:00")]},
     "availability[0].start"),
    ({"availability": [{"day": 1, "start": "08:00"}]}, "availability[0].end"),
    ({"availability": [window()] * 29}, "availability"),
    ({"availability": "weekdays"}, "availability"),
    ({"service_radius_km": 0}, "service_radius_km"),
    ({"service_radius_km": -5}, "service_radius_km"),
    ({"service_radius_km": 101}, "service_radius_km"),
    ({"service_radius_km": "10"}, "service_radius_km"),
    ({"title": ""}, "title"),
    ({"title": {"$ne": None}}, "title"),
    ({"provider_id": str(ObjectId())}, "provider_id"),
]


@pytest.mark.parametrize("change, field", BAD_OFFERINGS)
def test_bad_offering_is_400_and_stores_nothing(nginx, change, field):
    cat = new_category(nginx)
    p = provider(nginx, online=False)
    body = offering(cat)
    body.update(change)
    problem = assert_problem(nginx.post("/v1/offerings", body,
                                        token=p["token"]), 400)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert db().offerings.count_documents(
        {"provider_id": ObjectId(p["id"])}) == 0
    assert rdb().hget(f"feira:offer:{cat}", p["id"]) is None


def test_offering_routes(nginx):
    p = provider(nginx, online=False)
    assert_problem(nginx.get("/v1/offerings/123", token=p["token"]), 404)
    assert_problem(nginx.get(f"/v1/offerings/{ObjectId()}/x",
                             token=p["token"]), 404)
    r = request(nginx.port, "PUT", "/v1/offerings",
                headers={"Authorization": f"Bearer {p['token']}"})
    assert_problem(r, 405)
    assert "POST" in r.headers["allow"]
    assert_problem(nginx.get("/v1/offerings?provider=nope",
                             token=p["token"]), 400)
