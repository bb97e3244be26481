"""feira_services: of N providers accepting one request at the same moment,
exactly one wins and the others get 409 -- many times over, across two
nginx workers, with one request.accepted event each."""

import threading

from bson import ObjectId

from feira import request, wait_for
from requestutil import claims, client, db, events_of, new_category, \
    new_request, provider

PROVIDERS = 10
ROUNDS = 20


def test_concurrent_accepts_have_exactly_one_winner(nginx_factory):
    n = nginx_factory(workers=2)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    cat = new_category(n)
    providers = [provider(n, cat, -23.55 + i * 0.001, -46.63)
                 for i in range(PROVIDERS)]
    c = client(n)

    rids = []
    for _ in range(ROUNDS):
        rid = new_request(n, c, cat)["id"]
        rids.append(rid)
        start = threading.Barrier(PROVIDERS)
        results = [None] * PROVIDERS

        def accept(i):
            start.wait()
            r = request(n.port, "POST", f"/v1/requests/{rid}/accept",
                        headers={"Authorization":
                                 f"Bearer {providers[i]['token']}"})
            results[i] = (r.status, r.json())

        threads = [threading.Thread(target=accept, args=(i,))
                   for i in range(PROVIDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        winners = [i for i, (s, _) in enumerate(results) if s == 200]
        assert len(winners) == 1, results
        w = winners[0]
        for i, (s, body) in enumerate(results):
            if i != w:
                assert s == 409, (s, body)
                assert body["current_status"] == "accepted"
                assert body["request"] == {"id": rid, "status": "accepted"}

        doc = db().requests.find_one({"_id": ObjectId(rid)})
        assert doc["status"] == "accepted"
        assert str(doc["provider_id"]) == providers[w]["id"]
        assert results[w][1]["provider_id"] == providers[w]["id"]
        assert [x["_id"] for x in claims(rid)
                if x["from"] == "open"] == [f"{rid}:open"]

    # one accepted event per request, naming the winner
    logged = events_of(rids, 3)
    for rid in rids:
        evs = [e for e in logged[rid] if e["type"] == "request.accepted"]
        assert len(evs) == 1
        doc = db().requests.find_one({"_id": ObjectId(rid)})
        assert evs[0]["data"]["provider_id"] == str(doc["provider_id"])
