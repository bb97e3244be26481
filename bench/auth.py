"""make bench, auth: a feira_auth_require location with a valid HS256 token
against nginx's own `return 200`, and against njs checking the same token,
in the same run, one worker (CPU 0), wrk on CPU 1."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import (ROOT, access_token, stack, stack_env, wrk,
                      write_section)

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))


def token(key):
    return access_token(key)


def status(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    env = stack_env()
    stack("start", "redis")
    d = tempfile.mkdtemp(prefix="feira-bench-")
    port = int(env["HTTP_PORT"])
    base = f"http://127.0.0.1:{port}"
    run_env = dict(os.environ, **env)
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "bench", "nginx-auth.conf"), d,
                        str(port), "1"], check=True, env=run_env)
        with open(os.path.join(env["STACK_DIR"], "secrets", "jwt-secret"),
                  "rb") as f:
            key = f.read().strip()
        with open(os.path.join(ROOT, "bench", "jwt.js")) as f:
            js = f.read().replace("@SECRET@", key.decode())
        with open(os.path.join(d, "jwt.js"), "w") as f:
            f.write(js)
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-e",
                        f"{d}/logs/error.log"], check=True)

        auth = f"Authorization: Bearer {token(key)}"
        hdr = {"Authorization": auth.split(": ", 1)[1]}
        deadline = time.time() + 15
        while status(f"{base}/feira", hdr) != 200:
            if time.time() > deadline:
                sys.exit("feira_auth_require never answered 200")
            time.sleep(0.2)
        # the checks are real: no token, no entry
        assert status(f"{base}/feira") == 401
        assert status(f"{base}/njs") == 401
        assert status(f"{base}/njs", hdr) == 200

        # 20,000 distinct tokens, each used in turn: no cache helps
        tokens = os.path.join(d, "tokens.txt")
        with open(tokens, "w") as f:
            for _ in range(20000):
                f.write(token(key) + "\n")
        many = {"script": os.path.join(ROOT, "bench", "tokens.lua"),
                "env": {"TOKENS": tokens}}

        rows = {}
        for name, path, headers, extra in [
                ("return 200", "/r", [auth], {}),
                ("empty_gif, no check", "/gif", [auth], {}),
                ("feira_auth_require + empty_gif", "/feira", [auth], {}),
                ("njs HS256 check + empty_gif", "/njs", [auth], {}),
                ("feira_auth_require, 20,000 tokens in turn", "/feira", [],
                 many),
                ("njs, 20,000 tokens in turn", "/njs", [], many)]:
            wrk(base + path, 2, CONNECTIONS, headers, **extra)  # warm up
            rows[name] = wrk(base + path, SECONDS, CONNECTIONS, headers,
                             **extra)
            if rows[name]["non2xx"]:
                sys.exit(f"{name}: {rows[name]['non2xx']} non-2xx answers")
            print(f"{name}: {rows[name]['rps']:.0f} req/s, "
                  f"p99 {rows[name]['p99_ms']:.2f} ms", flush=True)
    finally:
        subprocess.run(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-s",
                        "quit"], check=False)
        stack("stop", "redis")
        time.sleep(0.5)
        shutil.rmtree(d, ignore_errors=True)

    base_rps = rows["return 200"]["rps"]
    feira = rows["feira_auth_require + empty_gif"]["rps"]
    njs = rows["njs HS256 check + empty_gif"]["rps"]
    cold = rows["feira_auth_require, 20,000 tokens in turn"]["rps"]
    njs_cold = rows["njs, 20,000 tokens in turn"]["rps"]
    lines = ["## Auth check at the edge (issue 3)", "",
             f"`GET` with a valid HS256 bearer token; wrk -t1 -c{CONNECTIONS} "
             f"-d{SECONDS}s.", "",
             "| location | req/s | ratio to return 200 | p99 ms |",
             "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['rps']:.0f} | "
                     f"{r['rps'] / base_rps:.2f} | {r['p99_ms']:.2f} |")
    lines += ["",
              f"With one token, as a client sends it for its whole life, "
              f"feira_auth_require keeps {feira / base_rps:.0%} of `return "
              f"200` (target: at least 70%) and is {feira / njs:.2f}x njs "
              f"(target: clearly faster). With a new token on every request "
              f"(the per-worker cache of verified tokens, "
              f"`feira_auth_cache`, never hits: HMAC and JSON every time) it "
              f"keeps {cold / base_rps:.0%} and is {cold / njs_cold:.2f}x "
              f"njs. Every request also checks the deny list in shared "
              f"memory."]
    write_section("auth", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
