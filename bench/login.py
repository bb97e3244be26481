"""make bench, login: logins per second with argon2id (OWASP's parameters)
hashed in the thread pool, and the latency of cheap endpoints on the same
worker alone and while that login load runs: the event loop never waits
for a hash or a MongoDB call."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from benchlib import ROOT, stack, stack_env, wrk, write_section

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    env = stack_env()
    stack("start", "redis", "mongo")
    d = tempfile.mkdtemp(prefix="feira-bench-")
    port = int(env["HTTP_PORT"])
    base = f"http://127.0.0.1:{port}"
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "bench", "nginx-login.conf"), d,
                        str(port), "1"], check=True, env=dict(os.environ,
                                                              **env))
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-e",
                        f"{d}/logs/error.log"], check=True)
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        deadline = time.time() + 30
        while post(f"{base}/v1/auth/register",
                   {"email": email, "password": "correct horse battery staple",
                    "name": "Bench", "role": "client"}) != 201:
            if time.time() > deadline:
                sys.exit("register never answered 201")
            time.sleep(0.5)

        login = {"script": os.path.join(ROOT, "bench", "login.lua"),
                 "env": {"EMAIL": email}}
        rows = {}
        wrk(f"{base}/r", 2, 16)
        rows["return 200, alone"] = wrk(f"{base}/r", SECONDS, 16)
        rows["GET /healthz, alone"] = wrk(f"{base}/healthz", SECONDS, 16)
        rows["POST /v1/auth/login"] = wrk(f"{base}/v1/auth/login", SECONDS,
                                          16, **login)

        # the same cheap endpoint while logins keep the thread pool busy
        during = {}

        def load():
            during["login"] = wrk(f"{base}/v1/auth/login", SECONDS + 2, 16,
                                  **login)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1)
        rows["GET /healthz, during logins"] = wrk(f"{base}/healthz", SECONDS,
                                                  16)
        t.join()
        rows["POST /v1/auth/login, with /healthz load"] = during["login"]
        for name, r in rows.items():
            if r["non2xx"]:
                sys.exit(f"{name}: {r['non2xx']} non-2xx answers")
            print(f"{name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms",
                  flush=True)
    finally:
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-s",
                        "quit"], check=False)
        stack("stop", "mongo", "redis")
        time.sleep(0.5)
        shutil.rmtree(d, ignore_errors=True)

    base_rps = rows["return 200, alone"]["rps"]
    alone = rows["GET /healthz, alone"]
    busy = rows["GET /healthz, during logins"]
    lines = ["## Register and login, argon2id in the thread pool (issues 3 "
             "and 12)", "",
             "argon2id with 2 passes over 19 MiB (OWASP), 16 pool threads, one "
             "nginx worker and its pool on one core, wrk -t1 -c16 on the "
             "other.", "",
             "| load | req/s | ratio to return 200 | p99 ms |",
             "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['rps']:.0f} | "
                     f"{r['rps'] / base_rps:.3f} | {r['p99_ms']:.2f} |")
    lines += ["",
              f"While the pool hashes passwords on the same core, `/healthz` "
              f"keeps {busy['rps'] / alone['rps']:.0%} of its throughput and "
              f"its p99 goes from {alone['p99_ms']:.2f} ms to "
              f"{busy['p99_ms']:.2f} ms: it shares the one core with the "
              f"hashing threads (which run at `feira_thread_nice 19`, so the "
              f"event loop comes first) but never waits behind a hash, as it "
              f"would if argon2 ran on the event loop (each hash takes tens "
              f"of milliseconds of CPU)."]
    write_section("login", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
