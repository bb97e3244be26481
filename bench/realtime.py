"""make bench, realtime: feira's /v1/ws against nchan (Debian's
libnginx-mod-nchan: websocket subscriber, Redis storage) in the same run,
each in its own nginx with one worker on CPU 0, the C load client
(bench/wsbench.c) and the publisher on CPU 1, one Redis for both.

- memory: nginx worker RSS with 10,000 idle subscribed WebSockets, minus
  the RSS before them, per connection;
- fan-out: one channel, 1,000 subscribers; delivery latency (publish call
  to arrival) at 50 events/s, and how long one event takes to reach all
  (its deliveries per second); then deliveries per second for a burst of
  events published as fast as the publisher can.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import http.client

from benchlib import ROOT, stack, stack_env, wrk, write_section

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

IDLE = int(os.environ.get("BENCH_IDLE_CONNECTIONS", "10000"))
FANOUT = int(os.environ.get("BENCH_FANOUT", "1000"))
PACED = int(os.environ.get("BENCH_PACED_EVENTS", "250"))
BURST = int(os.environ.get("BENCH_BURST_EVENTS", "500"))
BUILD = os.path.join(ROOT, "build", "bench")


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(key, sub):
    import hashlib
    import hmac
    now = int(time.time())
    claims = {"sub": sub, "role": "client", "jti": secrets.token_hex(16),
              "iss": "feira", "aud": "feira-api", "iat": now,
              "exp": now + 3600, "token_use": "access"}
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"},
                       separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    s = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(s)}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def worker_pid(d):
    with open(os.path.join(d, "nginx.pid")) as f:
        master = int(f.read())
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(f"/proc/{master}/task/{master}/children") as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
        time.sleep(0.1)
    raise RuntimeError("no worker")


class Client:
    """bench/wsbench on CPU 1."""

    def __init__(self, port, n, mode, tokens, channel=None):
        cmd = ["taskset", "-c", "1", os.path.join(BUILD, "wsbench"),
               "-p", str(port), "-n", str(n), "-m", mode, "-t", tokens]
        if channel:
            cmd += ["-c", channel]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def ready(self):
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"wsbench: {line!r}")

    def stats(self):
        self.p.stdin.write("stats\n")
        self.p.stdin.flush()
        f = self.p.stdout.readline().split()
        assert f[0] == "stats", f
        return {"count": int(f[1]), "p50_us": int(f[2]), "p99_us": int(f[3]),
                "max_us": int(f[4]), "first_ns": int(f[5]),
                "last_ns": int(f[6]), "events": int(f[7]),
                "span_us": int(f[8])}

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def feira_publisher(env, channel):
    import redis
    from rtutil import docs_script
    host, port = env["REDIS_ADDR"].split(":")
    r = redis.Redis(host=host, port=int(port))
    script = docs_script("publish")
    sha = r.script_load(script)

    def publish():
        body = '{"type":"bench","t":"@T%d@"}' % time.time_ns()
        r.evalsha(sha, 2, f"feira:rt:seq:{channel}", f"feira:rt:h:{channel}",
                  f"feira:rt:{channel}", body, 100, 3600)
    return publish


def nchan_publisher(port, channel):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def publish():
        body = "@T%d@ bench" % time.time_ns()
        conn.request("POST", f"/pub/{channel}", body=body,
                     headers={"Content-Type": "text/plain"})
        r = conn.getresponse()
        r.read()
        if r.status not in (201, 202):
            raise RuntimeError(f"nchan publish: {r.status}")
    return publish


def run_side(name, conf, env, tokens, fan_tokens, fan_user):
    d = tempfile.mkdtemp(prefix=f"feira-bench-{name}-")
    port = int(env["HTTP_PORT"])
    mode = "nchan" if name == "nchan" else "feira"
    out = {}
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "bench", conf), d, str(port), "1"],
                       check=True, env=dict(os.environ, **env))
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-e",
                        f"{d}/logs/error.log"], check=True)
        time.sleep(1.0)
        pid = worker_pid(d)

        if name == "feira":
            base = f"http://127.0.0.1:{port}"
            wrk(base + "/r", 2, 64)
            out["return200"] = wrk(base + "/r", 5, 64)["rps"]

        # memory: idle subscribed connections
        before = rss_kib(pid)
        c = Client(port, IDLE, mode, tokens)
        c.ready()
        time.sleep(2.0)
        after = rss_kib(pid)
        c.close()
        out["rss_before_kib"] = before
        out["rss_after_kib"] = after
        out["per_conn_bytes"] = (after - before) * 1024 / IDLE
        time.sleep(1.0)

        # fan-out: one channel, FANOUT subscribers
        channel = f"user:{fan_user}" if mode == "feira" else fan_user
        c = Client(port, FANOUT, mode, fan_tokens, channel)
        c.ready()
        time.sleep(1.0)
        publish = (feira_publisher(env, channel) if mode == "feira"
                   else nchan_publisher(port, fan_user))
        publish()  # warm up
        time.sleep(0.5)
        c.stats()

        for i in range(PACED):
            publish()
            time.sleep(0.02)
        time.sleep(1.0)
        out["paced"] = c.stats()

        start = time.time_ns()
        for i in range(BURST):
            publish()
        published = time.time_ns()
        deadline = time.time() + 30
        time.sleep(1.0)
        burst = c.stats()
        total = burst["count"]
        # keep reading until nothing more arrives
        while time.time() < deadline:
            time.sleep(0.5)
            more = c.stats()
            if more["count"] == 0:
                break
            total += more["count"]
            burst["last_ns"] = more["last_ns"]
        burst["count"] = total
        burst["publish_s"] = (published - start) / 1e9
        burst["seconds"] = (burst["last_ns"] - start) / 1e9
        burst["per_s"] = total / burst["seconds"] if burst["seconds"] else 0
        out["burst"] = burst
        c.close()
        rss_fan = rss_kib(pid)
        out["rss_end_kib"] = rss_fan
    finally:
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-s",
                        "quit"], check=False)
        time.sleep(1.0)
        with open(os.path.join(d, "logs", "error.log"),
                  errors="replace") as f:
            log = f.read()
        for bad in ("[alert]", "[emerg]", "[crit]", "signal 11"):
            if bad in log:
                print(f"{name}: {bad} in the error log:\n{log[-2000:]}")
        shutil.rmtree(d, ignore_errors=True)
    return out


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft),
                                                    max(want, hard)))

    env = stack_env()
    stack("start", "redis")
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    os.path.join(BUILD, "wsbench"),
                    os.path.join(ROOT, "bench", "wsbench.c")], check=True)

    # render once to make the stack's secret, then sign with it
    d = tempfile.mkdtemp()
    subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                    os.path.join(ROOT, "bench", "nginx-realtime.conf"), d,
                    env["HTTP_PORT"], "1"], check=True,
                   env=dict(os.environ, **env))
    shutil.rmtree(d, ignore_errors=True)
    with open(os.path.join(env["STACK_DIR"], "secrets", "jwt-secret"),
              "rb") as f:
        key = f.read().strip()

    work = tempfile.mkdtemp(prefix="feira-bench-tokens-")
    tokens = os.path.join(work, "tokens")
    with open(tokens, "w") as f:
        for _ in range(IDLE):
            uid = secrets.token_hex(12)
            f.write(f"{token(key, uid)} {uid}\n")
    fan_user = secrets.token_hex(12)
    fan_tokens = os.path.join(work, "fan")
    with open(fan_tokens, "w") as f:
        f.write(f"{token(key, fan_user)} {fan_user}\n")

    results = {}
    try:
        for name, conf in (("feira", "nginx-realtime.conf"),
                           ("nchan", "nginx-nchan.conf")):
            print(f"realtime bench: {name}", flush=True)
            results[name] = run_side(name, conf, env, tokens, fan_tokens,
                                     fan_user)
            print(json.dumps(results[name], indent=1), flush=True)
    finally:
        stack("stop", "redis")
        shutil.rmtree(work, ignore_errors=True)

    f, n = results["feira"], results["nchan"]
    base = f["return200"]

    def kib(b):
        return f"{b / 1024:.2f} KiB"

    lines = [
        "## Real time: /v1/ws against nchan (issue 6)", "",
        f"One nginx worker on CPU 0 for each, in turn; the C client "
        f"`bench/wsbench.c` and the publisher on CPU 1; one Redis. nchan "
        f"1.3.6 (Debian's `libnginx-mod-nchan`): `nchan_subscriber "
        f"websocket` with `nchan_redis_pass` (Redis storage), published "
        f"with HTTP POST to `nchan_publisher`, no authentication. feira: "
        f"`feira_auth_require` + `feira_realtime`, each connection with a "
        f"verified JWT, published with the Lua script of `docs/events.md` "
        f"(as a module or the payment-worker does). nginx's `return 200`: "
        f"{base:.0f} req/s (wrk -c64).", "",
        f"| {IDLE:,} idle subscribed WebSockets | feira | nchan |",
        "|---|---:|---:|",
        f"| worker RSS before | {f['rss_before_kib'] / 1024:.1f} MiB | "
        f"{n['rss_before_kib'] / 1024:.1f} MiB |",
        f"| worker RSS with them | {f['rss_after_kib'] / 1024:.1f} MiB | "
        f"{n['rss_after_kib'] / 1024:.1f} MiB |",
        f"| per connection | **{kib(f['per_conn_bytes'])}** | "
        f"{kib(n['per_conn_bytes'])} |", "",
        f"| one channel, {FANOUT:,} subscribers | feira | nchan |",
        "|---|---:|---:|",
        f"| delivery latency p50, {PACED} events at 50/s | "
        f"{f['paced']['p50_us'] / 1000:.2f} ms | "
        f"{n['paced']['p50_us'] / 1000:.2f} ms |",
        f"| delivery latency p99 | {f['paced']['p99_us'] / 1000:.2f} ms | "
        f"{n['paced']['p99_us'] / 1000:.2f} ms |",
        f"| deliveries counted (of {PACED * FANOUT:,}) | "
        f"{f['paced']['count']:,} | {n['paced']['count']:,} |",
        f"| one event to all {FANOUT:,}: median time, publish to last "
        f"arrival | {f['paced']['span_us'] / 1000:.2f} ms | "
        f"{n['paced']['span_us'] / 1000:.2f} ms |",
        f"| one event: messages delivered per second | "
        f"**{FANOUT / max(f['paced']['span_us'], 1) * 1e6:,.0f}** | "
        f"{FANOUT / max(n['paced']['span_us'], 1) * 1e6:,.0f} |",
        f"| burst of {BURST} events: delivered (of {BURST * FANOUT:,}) | "
        f"{f['burst']['count']:,} | {n['burst']['count']:,} |",
        f"| burst: publishing took | {f['burst']['publish_s']:.2f} s | "
        f"{n['burst']['publish_s']:.2f} s |",
        f"| burst: messages delivered per second | "
        f"**{f['burst']['per_s']:,.0f}** | {n['burst']['per_s']:,.0f} |",
        f"| burst: latency p50 / p99 | {f['burst']['p50_us'] / 1000:.1f} / "
        f"{f['burst']['p99_us'] / 1000:.1f} ms | "
        f"{n['burst']['p50_us'] / 1000:.1f} / "
        f"{n['burst']['p99_us'] / 1000:.1f} ms |",
        f"| deliveries per second as a ratio to `return 200` | "
        f"{f['burst']['per_s'] / base:.2f} | {n['burst']['per_s'] / base:.2f} |",
        "",
        f"Targets: under 8 KiB of worker RSS per idle connection: feira "
        f"{kib(f['per_conn_bytes'])} "
        f"({'met' if f['per_conn_bytes'] < 8192 else 'NOT met'}); at least "
        f"nchan's deliveries per second at no more memory per connection: "
        f"{f['burst']['per_s'] / max(n['burst']['per_s'], 1):.2f}x nchan's "
        f"rate at {f['per_conn_bytes'] / max(n['per_conn_bytes'], 1):.2f}x "
        f"its memory per connection "
        f"({'met' if f['burst']['per_s'] >= n['burst']['per_s'] and f['per_conn_bytes'] <= n['per_conn_bytes'] else 'NOT met'}). "
        f"A burst's rate is bounded by whichever is slower, the server or "
        f"the publisher (one event at a time, each waiting for its answer); "
        f"the two machines' other tenants make every figure noisy.",
    ]
    write_section("realtime", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
