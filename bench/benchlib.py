"""Shared by the benchmarks: wrk runs pinned to the other core, the stack of
the bench (its own ports), and the report in docs/benchmarks.md."""

import base64
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REPORT = os.path.join(ROOT, "docs", "benchmarks.md")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(key, sub=None, role="client", ttl=3 * 3600):
    """An HS256 access token as feira_auth issues them, signed with the
    bench stack's secret: the benchmarks do not measure argon2."""
    now = int(time.time())
    claims = {"sub": sub or secrets.token_hex(12), "role": role,
              "jti": secrets.token_hex(16), "sid": secrets.token_hex(16),
              "iss": "feira", "aud": "feira-api", "iat": now,
              "exp": now + ttl, "token_use": "access"}
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"},
                       separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    s = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(s)}"


def stack_env():
    out = subprocess.run(
        ["bash", "-c", ". scripts/lib.sh && stack_env bench && env"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return env


def stack(action, *services):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), action,
                    "bench", *services], check=True, cwd=ROOT)


def wrk(url, seconds=10, connections=64, headers=(), script=None, env=None,
        timeout=None):
    """Requests per second and p99 latency (ms) of one wrk run on CPU 1."""
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}",
           f"-d{seconds}s", "--latency"]
    if timeout:
        cmd += ["--timeout", f"{timeout}s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], check=True, capture_output=True,
                         text=True, env=dict(os.environ, **(env or {}))).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(0) if errors else ""}


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nginx = subprocess.run(["nginx", "-v"], capture_output=True,
                           text=True).stderr.strip()
    return (f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"{nginx}")


def write_section(name, text):
    """Replaces the section of one benchmark in docs/benchmarks.md."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    try:
        with open(REPORT) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = ("# Benchmarks\n\nWritten by `make bench`. Every figure is "
               "also given as a ratio to nginx's own\n`location = /r { return "
               "200; }` measured in the same run, one nginx worker, wrk\nwith "
               "the same connections and duration on the other core.\n")
    block = f"{begin}\n{text.rstrip()}\n\n_Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}._\n{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end),
                     lambda m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    with open(REPORT, "w") as f:
        f.write(doc)
