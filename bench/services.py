"""make bench, services: GET /v1/requests/{id}/matches with 1,000 online
providers in the category, and GET /v1/requests/{id}, against nginx's own
`return 200` in the same run, and against the same two endpoints in
Node.js (Express, the official MongoDB and Redis drivers; bench/peers/
services) on the same data.  One nginx worker and one Node.js process on
CPU 0, wrk on CPU 1; Redis, FerretDB and Kafka of the bench stack float."""

import base64
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from shutil import which
from concurrent.futures import ThreadPoolExecutor

import pymongo
from bson import ObjectId

from benchlib import ROOT, stack, stack_env, wrk, write_section

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
PROVIDERS = int(os.environ.get("BENCH_PROVIDERS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SLOW_SECONDS = int(os.environ.get("BENCH_SLOW_SECONDS", "30"))
SLOW_CONNECTIONS = 4
PEER = os.path.join(ROOT, "bench", "peers", "services")
HOME = (-23.5505, -46.6333)
CATEGORY = "bench-cleaning"
WEEK = [{"day": d, "start": "00:00", "end": "24:00"} for d in range(7)]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(key, sub, role):
    now = int(time.time())
    claims = {"sub": sub, "role": role, "jti": secrets.token_hex(16),
              "sid": secrets.token_hex(16), "iss": "feira",
              "aud": "feira-api", "iat": now, "exp": now + 3 * 3600,
              "token_use": "access"}
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"},
                       separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    s = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(s)}"


def call(base, method, path, tok, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {tok}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cpu(pid):
    """CPU seconds (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def measured(url, seconds, connections, headers, pids, timeout=30):
    """wrk, and the CPU each process spent per answered request (µs)."""
    before = {k: cpu(p) for k, p in pids.items()}
    r = wrk(url, seconds, connections, headers, timeout=timeout)
    done = r["rps"] * seconds
    r["cpu_us"] = {k: (cpu(p) - before[k]) * 1e6 / done if done else 0.0
                   for k, p in pids.items()}
    return r


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing listens on {port}")


def near(km):
    """A random point within km of HOME."""
    r = km * math.sqrt(random.random())
    a = random.random() * 2 * math.pi
    dlat = r * math.cos(a) / 111.195
    dlng = r * math.sin(a) / (111.195 * math.cos(math.radians(HOME[0])))
    return HOME[0] + dlat, HOME[1] + dlng


def seed(env, base, key):
    """A fresh database; 1,000 providers online in one category, seeded
    through the module's own API (their accounts directly in MongoDB: the
    benchmark does not measure argon2); one client and its request."""
    db = pymongo.MongoClient(env["MONGO_URI"]).get_database()
    for name in ("users", "categories", "offerings", "requests",
                 "request_transitions"):
        db.drop_collection(name)

    random.seed(5)
    admin = str(ObjectId())
    client = str(ObjectId())
    providers = [str(ObjectId()) for _ in range(PROVIDERS)]
    now = time.time()
    db.users.insert_many(
        [{"_id": ObjectId(p), "email": f"p{i}@bench.local",
          "email_lc": f"p{i}@bench.local", "password_hash": "-",
          "name": f"Provider {i}", "role": "provider",
          "rating_avg": round(random.uniform(1, 5), 2) if i % 5 else 0.0,
          "rating_count": 3 if i % 5 else 0}
         for i, p in enumerate(providers)]
        + [{"_id": ObjectId(client), "email": "c@bench.local",
            "email_lc": "c@bench.local", "password_hash": "-",
            "name": "Client", "role": "client", "rating_avg": 0.0,
            "rating_count": 0}])

    st, body = call(base, "POST", "/v1/categories", token(key, admin, "admin"),
                    {"slug": CATEGORY, "name": "Cleaning"})
    assert st == 201, (st, body)

    def one(p):
        t = token(key, p, "provider")
        lat, lng = near(10)
        offer = {"category": CATEGORY, "title": "Cleaning",
                 "price": {"amount": random.randrange(5000, 20000, 100),
                           "currency": "BRL"},
                 "pricing": random.choice(["fixed", "hourly"]),
                 "availability": WEEK, "service_radius_km": 15}
        for method, path, b, want in [
                ("POST", "/v1/offerings", offer, 201),
                ("PUT", "/v1/providers/me/location",
                 {"lat": lat, "lng": lng}, 204),
                ("PUT", "/v1/providers/me/status", {"online": True}, 200)]:
            st, res = call(base, method, path, t, b)
            assert st == want, (path, st, res)

    started = time.time()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(one, providers))
    print(f"seeded {PROVIDERS} providers in {time.time() - started:.0f} s",
          flush=True)

    ctoken = token(key, client, "client")
    st, req = call(base, "POST", "/v1/requests", ctoken,
                   {"category": CATEGORY, "description": "Three rooms",
                    "location": {"lat": HOME[0], "lng": HOME[1]},
                    "budget": {"amount": 12000, "currency": "BRL"}})
    assert st == 201, (st, req)
    return req["id"], ctoken


def peer_dir():
    """The peer runs from build/ with its packages installed there at
    bench time (npm ci from the committed lock file), never committed."""
    d = os.path.join(ROOT, "build", "bench-peer-services")
    os.makedirs(d, exist_ok=True)
    for name in ("package.json", "package-lock.json", "server.js"):
        shutil.copyfile(os.path.join(PEER, name), os.path.join(d, name))
    if not os.path.isdir(os.path.join(d, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=d,
                       check=True)
    return d


def start_peer(env, port, source, secret_file):
    d = peer_dir()
    penv = dict(os.environ, PORT=str(port), MONGO_URI=env["MONGO_URI"],
                REDIS_URL=f"redis://{env['REDIS_ADDR']}",
                JWT_SECRET_FILE=secret_file, MATCH_SOURCE=source,
                PRESENCE_TTL="3600")
    p = subprocess.Popen(["taskset", "-c", "0", "node", "server.js"],
                         cwd=d, env=penv)
    wait_port(port)
    return p


def main():
    if which("node") is None or which("npm") is None:
        sys.exit("bench/services.py needs Node.js and npm for its peer "
                 "(Debian: apt-get install nodejs npm)")
    env = stack_env()
    # a bench stack of its own, from clean data (its secrets are kept)
    stack("stop", "redis", "mongo", "kafka")
    for sub in ("redis", "mongo"):
        shutil.rmtree(os.path.join(env["STACK_DIR"], sub),
                      ignore_errors=True)
    stack("start", "redis", "mongo", "kafka")

    d = tempfile.mkdtemp(prefix="feira-bench-")
    d_nocache = tempfile.mkdtemp(prefix="feira-bench-nocache-")
    port = int(env["HTTP_PORT"])
    base = f"http://127.0.0.1:{port}"
    peers = {}
    procs = []
    run_env = dict(os.environ, **env)
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "bench", "nginx-services.conf"), d,
                        str(port), "1"], check=True, env=run_env)
        secret_file = os.path.join(env["STACK_DIR"], "secrets", "jwt-secret")
        with open(secret_file, "rb") as f:
            key = f.read().strip()
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-e",
                        f"{d}/logs/error.log"], check=True)
        wait_port(port)
        # the same without the cache of requests: every read from MongoDB
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "bench", "nginx-services.conf"),
                        d_nocache, str(port + 3), "1"], check=True,
                       env=run_env)
        with open(f"{d_nocache}/nginx.conf") as f:
            conf = f.read()
        conf = conf.replace("feira_services_presence_ttl  1h;",
                            "feira_services_presence_ttl  1h;\n"
                            "    feira_services_request_cache  0;")
        with open(f"{d_nocache}/nginx.conf", "w") as f:
            f.write(conf)
        subprocess.run(["nginx", "-p", d_nocache, "-c",
                        f"{d_nocache}/nginx.conf", "-e",
                        f"{d_nocache}/logs/error.log"], check=True)
        wait_port(port + 3)
        nocache = f"http://127.0.0.1:{port + 3}"
        time.sleep(1)   # the auth feed subscribes

        rid, ctoken = seed(env, base, key)
        auth = f"Authorization: Bearer {ctoken}"

        for name, source, p in [("node", "mongo", port + 1),
                                ("node-redis", "redis", port + 2)]:
            procs.append(start_peer(env, p, source, secret_file))
            peers[name] = f"http://127.0.0.1:{p}"

        # the same answers everywhere before anything is measured
        st, mine = call(base, "GET", f"/v1/requests/{rid}/matches", ctoken)
        assert st == 200 and len(mine["items"]) == 20, (st, mine)
        for name, url in peers.items():
            st, theirs = call(url, "GET", f"/v1/requests/{rid}/matches",
                              ctoken)
            assert st == 200, (name, st, theirs)
            assert [x["provider_id"] for x in theirs["items"]] == \
                [x["provider_id"] for x in mine["items"]], name
            st, doc = call(url, "GET", f"/v1/requests/{rid}", ctoken)
            assert st == 200 and doc["id"] == rid, (name, st, doc)
        st, doc = call(base, "GET", f"/v1/requests/{rid}", ctoken)
        assert st == 200 and doc["id"] == rid
        assert call(nocache, "GET", f"/v1/requests/{rid}", ctoken)[1] == doc
        # and the checks are real: no token, no answer
        assert call(base, "GET", f"/v1/requests/{rid}", "x")[0] == 401
        assert call(peers["node"], "GET", f"/v1/requests/{rid}", "x")[0] == 401

        get = f"/v1/requests/{rid}"
        matches = f"/v1/requests/{rid}/matches"
        runs = [("return 200", base, "/r"),
                ("nginx: GET /v1/requests/{id}", base, get),
                ("nginx, every read from MongoDB (feira_services_request_"
                 "cache 0): GET /v1/requests/{id}", nocache, get),
                ("Node.js: GET /v1/requests/{id}", peers["node"], get),
                ("nginx: GET .../matches", base, matches),
                ("Node.js, same Redis data path: GET .../matches",
                 peers["node-redis"], matches)]

        def pidfile(path):
            with open(path) as f:
                return int(f.read().strip())

        def worker_of(prefix):
            master = pidfile(f"{prefix}/nginx.pid")
            return int(subprocess.run(["pgrep", "-P", str(master)],
                                      capture_output=True, text=True)
                       .stdout.split()[0])

        worker = worker_of(d)
        stores = {"FerretDB": pidfile(os.path.join(env["STACK_DIR"], "mongo",
                                                   "ferretdb.pid")),
                  "Redis": pidfile(os.path.join(env["STACK_DIR"], "redis",
                                                "redis.pid"))}
        servers = {base: worker, nocache: worker_of(d_nocache),
                   peers["node"]: procs[0].pid,
                   peers["node-redis"]: procs[1].pid}

        def pids(url):
            return dict(stores, server=servers[url])

        # rounds interleaved, the median of each row: the cores are shared
        samples = {name: [] for name, _, _ in runs}
        for name, url, path in runs:
            wrk(url + path, 2, CONNECTIONS, [auth], timeout=30)
        for _ in range(ROUNDS):
            for name, url, path in runs:
                r = measured(url + path, SECONDS, CONNECTIONS, [auth],
                             pids(url))
                if r["non2xx"]:
                    sys.exit(f"{name}: {r['non2xx']} non-2xx answers")
                samples[name].append(r)
                print(f"{name}: {r['rps']:.0f} req/s, p99 "
                      f"{r['p99_ms']:.2f} ms {r['errors']}", flush=True)
        rows = {name: sorted(v, key=lambda r: r["rps"])[len(v) // 2]
                for name, v in samples.items()}

        # last, once, long and with 4 connections: every request waits for
        # FerretDB scans; with 64 queued none finished within 60 s
        name = (f"Node.js, offerings and ratings from MongoDB (-c"
                f"{SLOW_CONNECTIONS}): GET .../matches")
        rows[name] = measured(peers["node"] + matches, SLOW_SECONDS,
                              SLOW_CONNECTIONS, [auth], pids(peers["node"]),
                              timeout=SLOW_SECONDS)
        print(f"{name}: {rows[name]['rps']:.1f} req/s, p99 "
              f"{rows[name]['p99_ms']:.0f} ms", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for prefix in (d, d_nocache):
            if os.path.exists(f"{prefix}/nginx.pid"):
                subprocess.run(["nginx", "-p", prefix, "-c",
                                f"{prefix}/nginx.conf", "-s", "quit"],
                               check=False)
        stack("stop", "redis", "mongo", "kafka")
        time.sleep(0.5)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(d_nocache, ignore_errors=True)

    report(rows)


def report(rows):
    r200 = rows["return 200"]["rps"]
    ng_get = rows["nginx: GET /v1/requests/{id}"]
    ng_get_db = rows["nginx, every read from MongoDB (feira_services_"
                     "request_cache 0): GET /v1/requests/{id}"]
    js_get = rows["Node.js: GET /v1/requests/{id}"]
    ng_m = rows["nginx: GET .../matches"]
    js_m = rows[f"Node.js, offerings and ratings from MongoDB (-c"
                f"{SLOW_CONNECTIONS}): GET .../matches"]
    js_mr = rows["Node.js, same Redis data path: GET .../matches"]

    def verdict(a, b):
        if b["rps"] == 0:
            return "the peer finished no request within its run"
        ratio = a["rps"] / b["rps"]
        met = ratio >= 3 and a["p99_ms"] < b["p99_ms"]
        own = (b["cpu_us"]["server"] / a["cpu_us"]["server"]
               if a["cpu_us"]["server"] else 0)
        return (f"{ratio:.2f}x the throughput, p99 {a['p99_ms']:.1f} ms "
                f"against {b['p99_ms']:.1f} ms: target "
                f"{'met' if met else 'NOT met'} (and {own:.1f}x less "
                f"server CPU per request)")

    lines = ["## Services: a request and its matches (issue 5)", "",
             f"{PROVIDERS:,} online providers in the category, all within "
             f"their radius of the request; the ranking scores every one "
             f"and answers the best 20. The same client token (HS256) on "
             f"every request; wrk -t1 -c{CONNECTIONS} -d{SECONDS}s "
             f"--timeout 30s, the median of {ROUNDS} interleaved runs "
             f"(the typical Node.js ranking: one run of {SLOW_SECONDS}s "
             f"with {SLOW_CONNECTIONS} connections, see below). "
             f"nginx: one worker; Node.js {node_version()}: "
             f"one process (Express, mongodb and redis drivers); both on "
             f"CPU 0, wrk on CPU 1, Redis and FerretDB (the MongoDB of the "
             f"stack) on whatever core is free. The target of issue 5: at "
             f"least 3x the Node.js peer's throughput, with a lower p99.",
             "",
             "| endpoint | req/s | ratio to return 200 | p99 ms | "
             "CPU µs per request: server | FerretDB | Redis |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        c = r["cpu_us"]
        lines.append(f"| {name} | {r['rps']:.1f} | {r['rps'] / r200:.4f} | "
                     f"{r['p99_ms']:.1f} | {c['server']:.0f} | "
                     f"{c['FerretDB']:.0f} | {c['Redis']:.0f} |")
    lines += ["",
              f"- `GET /v1/requests/{{id}}` (the bearer check, the request "
              f"from Redis, `feira:request:<id>`, written through by every "
              f"change and filled from MongoDB on a miss; the participant "
              f"check): nginx against Node.js, {verdict(ng_get, js_get)}.",
              f"- the same with every read from MongoDB (by `_id`, in the "
              f"thread pool; `feira_services_request_cache 0`) against "
              f"Node.js, which reads MongoDB too: "
              f"{verdict(ng_get_db, js_get)}.",
              f"- `GET /v1/requests/{{id}}/matches` against the Node.js peer "
              f"written the typical way (the request from MongoDB, the "
              f"candidates from Redis GEO, their offerings and ratings from "
              f"MongoDB with two `$in` queries): {verdict(ng_m, js_m)}.",
              f"- the same against Node.js on the module's own data path "
              f"(offerings and ratings from the Redis mirror too, the same "
              f"Redis commands): {verdict(ng_m, js_mr)}.",
              "",
              "What sets the pace (the CPU columns: what each process spent "
              "per answered request, from /proc): a lookup by `_id` in "
              "FerretDB (Go over SQLite) spends several times what nginx "
              "does per request; on two shared cores the store, not the "
              "server, is the wall when every read goes there, for nginx "
              "and Node.js alike. Hence the cache of requests in Redis: "
              "MongoDB stays the record (every change is made there "
              "first, with its claim), and reads cost one Redis GET. The "
              "ranking is where "
              "the server's own work shows: 1,000 candidates parsed, "
              "checked, scored and sorted per request. The typical Node.js "
              "ranking waits for FerretDB, which runs a `$in` over 1,000 "
              "ids as a scan in Go (docs/matching.md): alone, one ranking "
              "took about 0.5 s; with 64 connections queued none finished "
              "within a run of 60 s, so it is measured with 4 (which "
              "flatters its p99 against the others). The two cores also ran "
              "other work while this was measured (compare `return 200` "
              "with the auth section): single runs moved by ±30%."]

    write_section("services", "\n".join(lines))
    print("\n".join(lines))


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
