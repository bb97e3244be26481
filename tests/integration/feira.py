"""Helpers for Feira's integration tests: real nginx instances with the built
modules, the test stack's services, and small HTTP helpers."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.join(ROOT, "scripts")
STACK = "test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env():
    """The addresses of the test stack, as scripts/lib.sh computes them."""
    out = subprocess.run(
        ["bash", "-c", ". scripts/lib.sh && stack_env test && "
         "echo $MONGO_URI $REDIS_ADDR $KAFKA_BROKERS $STACK_DIR"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    return {"MONGO_URI": out[0], "REDIS_ADDR": out[1],
            "KAFKA_BROKERS": out[2], "STACK_DIR": out[3]}


def service(action, name):
    """Start or stop one service of the test stack through the project's
    own script, as an operator would."""
    subprocess.run([os.path.join(SCRIPTS, "stack.sh"), action, STACK, name],
                   check=True, cwd=ROOT)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                        r.read())
    finally:
        conn.close()


def sanitizer_env(env, logs):
    """The environment to run nginx in: under `make test-asan` the modules
    are instrumented and nginx is not, so the ASan runtime is preloaded and
    reports go to files under logs/ (Nginx.check_log fails on them)."""
    env = dict(env)
    if os.environ.get("FEIRA_ASAN"):
        libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                                 capture_output=True, text=True).stdout.strip()
        env.update({
            "LD_PRELOAD": libasan,
            # every dynamic module defines ngx_modules and ngx_module_order,
            # by nginx's design: not an ODR bug
            "ASAN_OPTIONS": "detect_leaks=0:detect_odr_violation=0:"
                            f"log_path={logs}/asan",
            "UBSAN_OPTIONS": f"print_stacktrace=1:log_path={logs}/ubsan",
        })
    return env


def wait_for(fn, timeout=15, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last!r}")


class Nginx:
    """An nginx master with the Feira modules, rendered from a conf/
    template into its own temporary prefix."""

    def __init__(self, template="conf/nginx.conf", workers=1, env=None):
        self.dir = tempfile.mkdtemp(prefix="feira-nginx-")
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(stack_env())
        # each instance its own TCP ingest (stream) port
        self.stream_port = free_port()
        self.env["FEIRA_STREAM_PORT"] = str(self.stream_port)
        self.env.update(env or {})
        self.stream_port = int(self.env["FEIRA_STREAM_PORT"])
        subprocess.run([os.path.join(SCRIPTS, "render-conf.sh"),
                        os.path.join(ROOT, template), self.dir,
                        str(self.port), str(workers)],
                       check=True, env=self.env, cwd=ROOT)
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "logs", "error.log")
        # nginx's workers run as nobody: their sanitizer reports go to a
        # directory they may write (the prefix is the test's, mode 0700)
        self.sanitizer_dir = tempfile.mkdtemp(prefix="feira-sanitizer-")
        os.chmod(self.sanitizer_dir, 0o1777)
        self.nginx_env = sanitizer_env(self.env, self.sanitizer_dir)

    def add_conf(self, name, text, server=False):
        """Adds a file to conf.d/ (http level) or server.d/ (the main
        server); call before start() or follow with reload()."""
        sub = "server.d" if server else "conf.d"
        with open(os.path.join(self.dir, sub, name), "w") as f:
            f.write(text)

    def set_directive(self, name, value):
        """Replaces the value of a directive in the rendered nginx.conf
        (it must appear exactly once); call before start()."""
        import re
        with open(self.conf) as f:
            text = f.read()
        text, n = re.subn(rf"^(\s*){name}\s+[^;]*;", rf"\g<1>{name} {value};",
                          text, flags=re.M)
        assert n == 1, f"{name} appears {n} times"
        with open(self.conf, "w") as f:
            f.write(text)

    def cmd(self, *args):
        return ["nginx", "-p", self.dir, "-c", self.conf,
                "-e", self.error_log, *args]

    def test_config(self):
        """`nginx -t` of this configuration, as a CompletedProcess."""
        return subprocess.run(self.cmd("-t"), capture_output=True, text=True,
                              env=self.nginx_env)

    def start(self):
        subprocess.run(self.cmd(), check=True, env=self.nginx_env)
        wait_for(lambda: self.healthy(), what="nginx /healthz")
        return self

    def healthy(self):
        try:
            return request(self.port, "GET", "/healthz", timeout=2).status == 200
        except OSError:
            return False

    def master_pid(self):
        with open(os.path.join(self.dir, "nginx.pid")) as f:
            return int(f.read())

    def reload(self):
        subprocess.run(self.cmd("-s", "reload"), check=True,
                       env=self.nginx_env)

    def get(self, path, token=None, **kw):
        if token:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        return request(self.port, "GET", path, **kw)

    def post(self, path, body=None, token=None, **kw):
        if token:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        return request(self.port, "POST", path, body=body, **kw)

    def log(self):
        with open(self.error_log, errors="replace") as f:
            return f.read()

    def stop(self):
        try:
            pid = self.master_pid()
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)

    def check_log(self):
        """Nothing alarming in the error log: crashes, alerts, sanitizers."""
        text = self.log()
        for bad in ("[alert]", "[emerg]", "[crit]", "signal 11",
                    "AddressSanitizer", "runtime error:"):
            assert bad not in text, f"{bad} in {self.error_log}:\n{text[-3000:]}"
        for logs in (os.path.join(self.dir, "logs"), self.sanitizer_dir):
            for name in os.listdir(logs):
                if not name.startswith(("asan", "ubsan")):
                    continue
                with open(os.path.join(logs, name), errors="replace") as f:
                    raise AssertionError(f"sanitizer report {name}:\n"
                                         f"{f.read()[-4000:]}")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.sanitizer_dir, ignore_errors=True)
