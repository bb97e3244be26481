"""make bench, mixed: BENCH_PAIRS clients and providers (500 + 500 by
default) run whole request lifecycles for BENCH_MIXED_SECONDS (60) against
the whole of conf/nginx.conf (every module, one worker on CPU 0), with
matching, chat and location updates: completed lifecycles per second and
p50/p99 per endpoint, beside nginx's own `return 200` measured in the same
run.  The load is bench/mixed (Go) on CPU 1.

`make soak` runs the same for 10 minutes with the workers of the bench
stack consuming its topics (notification worker with Mailpit, payment
worker with stripe-mock, analytics worker) and every job paid by card
(bench/mixed -pay), and samples the RSS of the nginx worker and of each
worker every 10 s: after a warm-up they must stay flat (issue 12)."""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pymongo
from bson import ObjectId

from benchlib import (ROOT, access_token, stack, stack_env, wrk,
                      write_section)

PAIRS = int(os.environ.get("BENCH_PAIRS", "500"))
SECONDS = int(os.environ.get("BENCH_MIXED_SECONDS", "60"))
SOAK = "--soak" in sys.argv
# the workers of the soak, as scripts/stack.sh names them and their pid files
WORKERS = {"notify": "notification-worker", "payments": "payment-worker",
           "analytics": "analytics-worker"}
PORTS = {"notification-worker": "NOTIFY_PORT",
         "payment-worker": "PAYMENT_PORT",
         "analytics-worker": "ANALYTICS_PORT"}
WARMUP = 120
# after the load, how long the workers may take to work off their backlog
DRAIN = 300
BUILD = os.path.join(ROOT, "build", "bench")
HOME = (-23.5505, -46.6333)
WEEK = [{"day": d, "start": "00:00", "end": "24:00"} for d in range(7)]


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


def rss_kib(pid, field="VmRSS"):
    """VmRSS of a process in KiB, or one of its parts: RssAnon (its heap
    and stacks), RssShmem (the shared memory zones it has touched)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_pids(env):
    """{process name: pid} of the bench stack's workers."""
    out = {}
    for name in WORKERS.values():
        with open(os.path.join(env["STACK_DIR"], name, "worker.pid")) as f:
            out[name] = int(f.read())
    return out


def worker_metrics(port):
    """(events handled, events not yet handled) of a worker: the sums of its
    feira_worker_events_processed_total and feira_worker_consumer_lag."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None, None

    def total(name):
        return int(sum(float(line.rsplit(" ", 1)[1])
                       for line in text.splitlines()
                       if line.startswith(name + "{")))
    return (total("feira_worker_events_processed_total"),
            total("feira_worker_consumer_lag"))


def seed(env, base, key):
    """A category, an offering and a position per pair, through the API;
    the accounts directly in MongoDB (argon2 is measured elsewhere)."""
    db = pymongo.MongoClient(env["MONGO_URI"]).get_database()
    random.seed(7)
    admin = access_token(key, str(ObjectId()), "admin")
    ids = [(str(ObjectId()), str(ObjectId())) for _ in range(PAIRS)]
    db.users.insert_many(
        [{"_id": ObjectId(u), "email": f"{role}{i}@bench.local",
          "email_lc": f"{role}{i}@bench.local", "password_hash": "-",
          "name": f"{role} {i}", "role": role, "rating_avg": 4.5,
          "rating_count": 2}
         for i, pair in enumerate(ids)
         for u, role in zip(pair, ("client", "provider"))])

    def one(i):
        client, provider = ids[i]
        cat = f"mixed-{i}"
        lat = HOME[0] + random.uniform(-0.05, 0.05)
        lng = HOME[1] + random.uniform(-0.05, 0.05)
        ptok = access_token(key, provider, "provider")
        st, res = call(base, "POST", "/v1/categories", admin,
                       {"slug": cat, "name": f"Mixed {i}"})
        assert st == 201, (st, res)
        st, res = call(base, "POST", "/v1/offerings", ptok,
                       {"category": cat, "title": "Cleaning",
                        "price": {"amount": 12000, "currency": "BRL"},
                        "pricing": "fixed", "availability": WEEK,
                        "service_radius_km": 20})
        assert st == 201, (st, res)
        return {"category": cat, "lat": lat, "lng": lng,
                "client_token": access_token(key, client, "client"),
                "provider_token": ptok}

    started = time.time()
    with ThreadPoolExecutor(8) as ex:
        pairs = list(ex.map(one, range(PAIRS)))
    print(f"seeded {PAIRS} pairs in {time.time() - started:.0f} s",
          flush=True)
    return pairs


def build_load():
    os.makedirs(BUILD, exist_ok=True)
    out = os.path.join(BUILD, "mixed")
    subprocess.run(["go", "build", "-o", out, "."], check=True,
                   cwd=os.path.join(ROOT, "bench", "mixed"))
    return out


def main():
    env = stack_env()
    services = ["redis", "mongo", "kafka"]
    if SOAK:
        services += ["mailpit", "stripe", *WORKERS]
    stack("stop", *services)
    for sub in ("redis", "mongo", "kafka", "mailpit", *WORKERS.values()):
        shutil.rmtree(os.path.join(env["STACK_DIR"], sub),
                      ignore_errors=True)
    stack("start", *services)
    load = build_load()

    d = tempfile.mkdtemp(prefix="feira-bench-mixed-")
    port = int(env["HTTP_PORT"])
    base = f"http://127.0.0.1:{port}"
    run_env = dict(os.environ, **env)
    samples = []
    stop = threading.Event()
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "conf", "nginx.conf"), d,
                        str(port), "1"], check=True, env=run_env)
        conf = os.path.join(d, "nginx.conf")
        with open(conf) as f:
            text = f.read()
        # one address plays a thousand users: its limits are lifted
        text = text.replace("limit_conn  feira_addr  256;",
                            "limit_conn  feira_addr  60000;")
        with open(conf, "w") as f:
            f.write(text)
        with open(os.path.join(d, "server.d", "bench.conf"), "w") as f:
            f.write("location = /r { return 200; }\n")
        subprocess.run(["nginx", "-p", d, "-c", conf, "-e",
                        f"{d}/logs/error.log"], check=True)
        with open(f"{d}/nginx.pid") as f:
            master = int(f.read())
        time.sleep(1)
        worker = int(subprocess.run(["pgrep", "-P", str(master)],
                                    capture_output=True, text=True)
                     .stdout.split()[0])
        subprocess.run(["taskset", "-pc", "0", str(worker)], check=True,
                       capture_output=True)

        with open(os.path.join(env["STACK_DIR"], "secrets",
                               "jwt-secret"), "rb") as f:
            key = f.read().strip()
        pairs = seed(env, base, key)
        pairs_file = os.path.join(d, "pairs.json")
        with open(pairs_file, "w") as f:
            json.dump(pairs, f)

        baseline = wrk(f"{base}/r", seconds=10, connections=64)

        procs = {"nginx worker": worker}
        if SOAK:
            procs.update(worker_pids(env))

        def rss_all():
            out = {name: rss_kib(pid) for name, pid in procs.items()}
            if SOAK:
                # where the nginx worker's memory is: heap or shared zones
                out["nginx heap"] = rss_kib(worker, "RssAnon")
                out["nginx shm"] = rss_kib(worker, "RssShmem")
            return out

        def backlog():
            return {name: worker_metrics(env[PORTS[name]])
                    for name in procs if name in PORTS}

        t0 = time.time()

        def sample():
            while not stop.wait(10 if SOAK else 5):
                samples.append((time.time() - t0, rss_all(), backlog()))

        sampler = threading.Thread(target=sample, daemon=True)
        rss_before = rss_all()
        samples.append((0.0, rss_before, backlog()))
        sampler.start()
        r = subprocess.run(["taskset", "-c", "1", load, "-base", base,
                            "-pairs", pairs_file,
                            "-seconds", str(SECONDS)]
                           + (["-pay"] if SOAK else []),
                           check=True, capture_output=True, text=True)
        result = json.loads(r.stdout)
        result["load_ended_s"] = time.time() - t0
        # the workers work off what they have not handled yet
        end = time.time() + (DRAIN if SOAK else 0)
        while time.time() < end and any(
                lag for _, lag in backlog().values()):
            time.sleep(5)
        stop.set()
        sampler.join()
        samples.append((time.time() - t0, rss_all(), backlog()))
        after = samples[-1][1]
        result["rss_before_kib"] = rss_before["nginx worker"]
        result["rss_after_kib"] = after["nginx worker"]
        if SOAK:
            # every worker lived through the run, and did its part
            result["workers_alive"] = {
                name: os.path.exists(f"/proc/{pid}")
                for name, pid in procs.items()}
            result["backlog"] = samples[-1][2]
        with open(f"{d}/logs/error.log", errors="replace") as f:
            log = f.read()
        result["alerts"] = sum(log.count(w) for w in
                               ("[alert]", "[crit]", "[emerg]"))
        os.makedirs(BUILD, exist_ok=True)
        shutil.copy(f"{d}/logs/error.log", os.path.join(BUILD,
                                                        "mixed-error.log"))
    finally:
        stop.set()
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-s",
                        "quit"], capture_output=True)
        time.sleep(1)
        stack("stop", *services)
        shutil.rmtree(d, ignore_errors=True)

    report(result, baseline, samples)


def soak_lines(res, samples):
    """The soak's memory: per process, its RSS at the start, after the
    warm-up, when the load ended and at the end (the workers' backlog
    worked off), and every minute in between with each worker's backlog."""
    loaded = [x for x in samples if x[0] <= res["load_ended_s"]]
    warm = next((k for t, k, _ in loaded if t >= WARMUP), loaded[-1][1])
    start, stopped, end = samples[0][1], loaded[-1][1], samples[-1][1]
    lines = [f"Memory: RSS of each process (KiB), sampled every 10 s; the "
             f"warm-up is the first {WARMUP} s (pools, caches and Kafka "
             "buffers filling).  Flat: no growth after it that goes on.  "
             f"After the load (at {res['load_ended_s']:.0f} s) the workers "
             f"are given up to {DRAIN} s to work off their backlog (events "
             "on their topics not yet handled: their "
             "`feira_worker_consumer_lag`).",
             "",
             "| process | start | after warm-up | load ended | end | "
             "growth warm-up to load end | max | events handled, "
             "left at the end |",
             "|---|---|---|---|---|---|---|---|"]
    for name in start:
        peak = max(k[name] for _, k, _ in samples)
        growth = (stopped[name] - warm[name]) / max(warm[name], 1) * 100
        done, left = res.get("backlog", {}).get(name, (None, None))
        alive = res.get("workers_alive", {}).get(name, True)
        lines.append(f"| {name}{'' if alive else ' (DIED)'} | "
                     f"{start[name]} | {warm[name]} | {stopped[name]} | "
                     f"{end[name]} | {growth:+.1f}% | {peak} | "
                     f"{'-' if done is None else f'{done}, {left}'} |")
    lines += ["", "Every minute: RSS in KiB (a worker's backlog in events):",
              "",
              "| s | " + " | ".join(start) + " |",
              "|---|" + "---|" * len(start)]
    minute = -60
    for t, k, b in samples:
        if t - minute >= 60 or t == samples[-1][0]:
            minute = t
            lines.append(f"| {t:.0f} | " + " | ".join(
                str(k[n]) + (f" ({b[n][1]})" if b.get(n, (0, None))[1]
                             is not None else "") for n in start) + " |")
    return lines


def report(res, baseline, samples):
    rate = res["lifecycles"] / res["seconds"]
    lines = [
        "## Mixed scenario: whole lifecycles (issue 12)" if not SOAK
        else "## Soak: the mixed scenario for 10 minutes (issue 12)",
        "",
        f"{res['pairs']} clients and {res['pairs']} providers (a category "
        "each), the whole `conf/nginx.conf` with one nginx worker on CPU 0, "
        "the load (`bench/mixed`, Go) on CPU 1; Redis, FerretDB and Kafka of "
        "the bench stack float.  A lifecycle: the provider's position, "
        "`POST /v1/requests`, its matches, accept, three chat messages and "
        "the history, start, a position on the way (at most one a second: "
        "the rate limit), complete, and the client reading the result." +
        (" Here each job is also paid by card once accepted (`POST "
         "/v1/requests/{id}/payments`): the payment worker holds the amount "
         "at stripe-mock and captures it when the job completes; the "
         "notification worker (e-mail into Mailpit, the in-app inbox) and "
         "the analytics worker consume the same topics." if SOAK else ""),
        "",
        "| measured | value |",
        "|---|---|",
        f"| duration | {res['seconds']:.0f} s |",
        f"| **lifecycles completed per second** | **{rate:.1f}** "
        f"({res['lifecycles']} in all, {res['failed']} failed) |",
        f"| nginx `return 200` in the same run (wrk, 64 connections) | "
        f"{baseline['rps']:.0f} req/s, p99 {baseline['p99_ms']:.2f} ms |",
        f"| nginx worker RSS before / after | {res['rss_before_kib']} / "
        f"{res['rss_after_kib']} KiB |",
        f"| alerts in the error log | {res['alerts']} |",
        "",
        "| endpoint | requests | per second | ratio to `return 200` | "
        "errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in sorted(res["endpoints"].items()):
        rps = e["count"] / res["seconds"]
        lines.append(f"| `{name}` | {e['count']} | {rps:.0f} | "
                     f"{rps / baseline['rps']:.3f} | {e['errors']} | "
                     f"{e['p50_ms']:.1f} | {e['p99_ms']:.1f} |")
    total = sum(e["count"] for e in res["endpoints"].values())
    lines += ["", f"All endpoints together: {total / res['seconds']:.0f} "
              f"requests per second, "
              f"{total / res['seconds'] / baseline['rps']:.3f} of "
              "`return 200`.  Errors are answers other than the expected "
              "one (their codes are in the run's JSON).",
              "",
              "What sets the pace: nearly every step is a MongoDB call, "
              "run in nginx's thread pool, against FerretDB v1 on SQLite, "
              "which serves queries on anything but `_id` by scanning the "
              "collection (docs/events.md): as requests, claims and "
              "messages pile up during the run, each call gets slower, "
              "the pool's queue grows and the latencies above are mostly "
              "that queue (`return 200` is measured before the load).  "
              "A real MongoDB with the indexes the modules create is the "
              "way to a higher rate, and is not measured here."]
    if SOAK and samples:
        lines += ["", *soak_lines(res, samples)]
    elif samples:
        series = [(t, k["nginx worker"]) for t, k, _ in samples]
        first, last = series[0][1], series[-1][1]
        lines += ["", "RSS of the nginx worker over the run (KiB): " +
                  ", ".join(f"{t:.0f} s: {k}" for t, k in series[::max(
                      1, len(series) // 12)]) +
                  f"; growth from the first sample to the last: "
                  f"{(last - first) / max(first, 1) * 100:.1f}%."]
    write_section("soak" if SOAK else "mixed", "\n".join(lines))
    print(json.dumps(res["endpoints"], indent=1))
    print(f"lifecycles/s {rate:.1f}")


if __name__ == "__main__":
    main()
