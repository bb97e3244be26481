"""feira_metrics (issue 11): GET /metrics in the Prometheus text format,
from a shared zone that every nginx worker records into and reports."""

import http.client
import http.server
import re
import subprocess
import threading
import time

import pytest

from feira import Nginx, free_port, request, service, wait_for
from promtext import Metrics

ROUTES = """
location = /t/ok      { feira_metrics_module test; feira_metrics_route ok;
                        return 204; }
location = /t/missing { feira_metrics_module test; feira_metrics_route missing;
                        return 404; }
location = /t/broken  { feira_metrics_module test; feira_metrics_route broken;
                        return 503; }
location ~ ^/t/items/ { feira_metrics_module test; feira_metrics_route items;
                        return 200 "item"; }
location = /t/items   { feira_metrics_module test; feira_metrics_route items;
                        return 200 "items"; }
location = /t/quiet   { feira_metrics_route off; return 200; }
location = /t/default { return 200; }
"""


def scrape(n, port=None):
    r = request(port or n.port, "GET", "/metrics")
    assert r.status == 200, r.body
    assert r.headers["content-type"] == \
        "text/plain; version=0.0.4; charset=utf-8"
    return Metrics(r.body.decode())


def requests_of(m, route, status, module="test"):
    return m.get("feira_http_requests_total", module=module, route=route,
                 status=status)


def get_from(port, path, source):
    """A GET whose connection comes from SOURCE (an address of lo)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_requests_are_counted_by_module_route_and_status_class(
        nginx_factory):
    n = nginx_factory(server_conf=ROUTES)
    for path, times in [("/t/ok", 3), ("/t/missing", 2), ("/t/broken", 1),
                        ("/t/items/1", 2), ("/t/items/2", 1),
                        ("/t/items", 1), ("/t/quiet", 4), ("/t/default", 2)]:
        for _ in range(times):
            n.get(path)

    m = scrape(n)
    assert m.types["feira_http_requests_total"] == "counter"
    assert requests_of(m, "ok", "2xx") == 3
    assert requests_of(m, "ok", "4xx") == 0
    assert requests_of(m, "missing", "4xx") == 2
    assert requests_of(m, "broken", "5xx") == 1
    # two locations with one route name share its counters
    assert requests_of(m, "items", "2xx") == 4
    # the default route is the location's name, the default module "nginx"
    assert requests_of(m, "/t/default", "2xx", module="nginx") == 2
    # feira_metrics_route off: not recorded at all
    assert not [k for k in m.find("feira_http_requests_total")
                if ("route", "/t/quiet") in k]
    # every status class of every route is there, zeros included
    for route in ("ok", "missing", "broken", "items"):
        assert sorted(dict(k)["status"] for k in
                      m.find("feira_http_requests_total", route=route)) == \
            ["1xx", "2xx", "3xx", "4xx", "5xx"]
    # the shipped health locations carry their module label
    assert requests_of(m, "/healthz", "2xx", module="health") >= 1


class SlowUpstream:
    """A real HTTP server that answers after DELAY seconds."""

    def __init__(self, delay):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(outer.delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.delay = delay
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_latency_histogram_puts_a_slow_request_in_its_bucket(nginx_factory):
    up = SlowUpstream(0.3)
    try:
        n = nginx_factory(server_conf=f"""
            location = /t/slow {{
                feira_metrics_module test; feira_metrics_route slow;
                proxy_pass http://127.0.0.1:{up.port};
            }}
            location = /t/fast {{
                feira_metrics_module test; feira_metrics_route fast;
                return 200;
            }}""")
        assert n.get("/t/slow").status == 200
        for _ in range(5):
            n.get("/t/fast")
    finally:
        up.close()

    m = scrape(n)
    h = "feira_http_request_duration_seconds"
    assert m.types[h] == "histogram"

    def bucket(route, le):
        return m.get(h + "_bucket", module="test", route=route, le=le)

    # the buckets of conf/nginx.conf's feira_metrics_buckets
    les = sorted((dict(k)["le"] for k in
                  m.find(h + "_bucket", route="slow")),
                 key=lambda v: float(v))
    assert les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                   "1", "2.5", "5", "10", "+Inf"]
    assert bucket("slow", "0.25") == 0
    assert bucket("slow", "0.5") == 1
    assert bucket("slow", "+Inf") == 1
    assert m.get(h + "_count", module="test", route="slow") == 1
    assert 0.3 <= m.get(h + "_sum", module="test", route="slow") < 0.5
    # cumulative buckets
    assert bucket("fast", "0.005") == 5
    assert bucket("fast", "+Inf") == 5
    assert m.get(h + "_count", module="test", route="fast") == 5


def test_every_worker_records_into_and_reports_the_same_zone(nginx_factory):
    port = free_port()
    # reuseport spreads the connections over both workers
    n = nginx_factory(workers=2, conf=f"""
        server {{
            listen 127.0.0.1:{port} reuseport;
            location = /t/who {{
                feira_metrics_module test; feira_metrics_route who;
                return 200 "$pid";
            }}
            location = /metrics {{
                feira_metrics; add_header X-Pid $pid always;
            }}
        }}""")
    pids = [int(request(port, "GET", "/t/who").body) for _ in range(60)]
    assert len(set(pids)) == 2, "both workers served requests"

    served_by = set()
    for _ in range(30):
        r = request(port, "GET", "/metrics")
        served_by.add(int(r.headers["x-pid"]))
        m = Metrics(r.body.decode())
        assert requests_of(m, "who", "2xx") == 60
    assert served_by == set(pids), "both workers answered /metrics alike"

    # one slot per worker: the per-process gauges name both workers
    assert {int(dict(k)["pid"]) for k in
            m.find("feira_kafka_queue_messages")} == set(pids)
    assert {int(dict(k)["pid"]) for k in
            m.find("feira_thread_pool_jobs", state="queued")} == set(pids)


def test_counters_survive_a_reload_and_slots_follow_the_workers(
        nginx_factory):
    n = nginx_factory(server_conf=ROUTES)
    for _ in range(7):
        n.get("/t/ok")
    old = n.get("/healthz").json()["pid"]

    n.reload()
    wait_for(lambda: n.get("/healthz").json()["pid"] != old,
             what="a new worker after the reload")
    new = n.get("/healthz").json()["pid"]

    m = scrape(n)
    assert requests_of(m, "ok", "2xx") == 7
    # the old worker gave its slot back (once it has exited: it flushes
    # its Kafka producer and finishes its thread pool jobs first)
    wait_for(lambda: {int(dict(k)["pid"]) for k in scrape(n).find(
        "feira_kafka_queue_messages")} == {new}, timeout=60,
        what="only the new worker's slot in use")


def test_shared_library_counters_are_exported(nginx):
    pid = nginx.get("/healthz").json()["pid"]
    before = scrape(nginx)
    assert nginx.get("/readyz").status == 200
    after = scrape(nginx)

    # /readyz pings MongoDB from a pool thread: one more command measured
    c = "feira_mongo_command_duration_seconds_count"
    assert after.get(c) >= before.get(c) + 1
    assert after.get("feira_mongo_command_duration_seconds_bucket",
                     le="+Inf") == after.get(c)
    assert after.types["feira_mongo_command_duration_seconds"] == "histogram"
    # once the jobs are done (start-up jobs of other modules included),
    # nothing is left queued or running in this idle worker: the gauges
    # come back to zero
    def idle():
        m = scrape(nginx)
        return all(m.get("feira_thread_pool_jobs", pid=str(pid),
                         state=st) == 0 for st in ("queued", "running"))
    wait_for(idle, timeout=20, what="no thread-pool job left")
    assert after.get("feira_kafka_queue_messages", pid=str(pid)) == 0
    for name in ("feira_redis_reconnects_total",
                 "feira_kafka_produce_failures_total",
                 "feira_kafka_delivery_failures_total",
                 "feira_mongo_command_failures_total",
                 "feira_mongo_timeouts_total",
                 "feira_websocket_connections_total",
                 "feira_websocket_dropped_total"):
        assert after.types[name] == "counter"
        assert after.get(name) >= 0
    assert after.get("feira_websocket_connections") == 0
    assert set(dict(k)["direction"] for k in
               after.find("feira_websocket_messages_total")) == {"in", "out"}
    # stub_status's counters, in the text format
    assert after.get("feira_nginx_connections", state="active") >= 1
    assert after.get("feira_nginx_connections_accepted_total") >= 3


@pytest.mark.parametrize("dep, metric", [
    ("redis", "feira_redis_reconnects_total"),
    ("mongo", "feira_mongo_timeouts_total"),
])
def test_a_dependency_down_shows_in_its_counter(nginx, dep, metric):
    before = scrape(nginx).get(metric)
    service("stop", dep)
    try:
        if dep == "mongo":
            # server selection gives up after feira_mongo_timeout (2 s)
            assert nginx.get("/readyz", timeout=15).status == 503
        wait_for(lambda: scrape(nginx).get(metric) > before, timeout=15,
                 what=f"{metric} to grow with {dep} down")
    finally:
        service("start", dep)
    wait_for(lambda: nginx.get("/readyz", timeout=15).status == 200,
             timeout=60, what=f"ready again after {dep} came back")


def test_metrics_and_stub_status_answer_loopback_127_0_0_1_only(nginx):
    assert get_from(nginx.port, "/metrics", "127.0.0.1") == 200
    assert get_from(nginx.port, "/metrics", "127.0.0.2") == 403
    assert get_from(nginx.port, "/nginx_status", "127.0.0.2") == 403
    assert get_from(nginx.port, "/healthz", "127.0.0.2") == 200


def test_metrics_accepts_only_get_and_head(nginx):
    r = request(nginx.port, "HEAD", "/metrics")
    assert r.status == 200 and r.body == b""
    r = nginx.post("/metrics", body={"x": 1})
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert r.headers["content-type"] == "application/problem+json"


def test_the_output_passes_promtool(nginx):
    nginx.get("/healthz")
    r = nginx.get("/metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                       capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_label_values_are_escaped(nginx_factory):
    n = nginx_factory(server_conf=r"""
        location ~ ^/t/re/(\d+)$ { feira_metrics_module 'a"b'; return 200; }
    """)
    assert n.get("/t/re/12").status == 200
    m = scrape(n)
    assert m.get("feira_http_requests_total", module='a"b',
                 route=r"^/t/re/(\d+)$", status="2xx") == 1
    assert 'module="a\\"b",route="^/t/re/(\\\\d+)$"' in \
        n.get("/metrics").body.decode()


@pytest.mark.parametrize("edit, message", [
    ((r"feira_metrics_buckets\s+[^;]*;", "feira_metrics_buckets 0.1 0.05;"),
     "invalid \"feira_metrics_buckets\" bound \"0.05\""),
    ((r"feira_metrics_buckets\s+[^;]*;", "feira_metrics_buckets 0.0005 1;"),
     "invalid \"feira_metrics_buckets\" bound \"0.0005\""),
    ((r"feira_metrics_zone\s+[^;]*;", "feira_metrics_zone m 8k;"),
     "\"feira_metrics_zone\" \"8k\" is too small"),
    ((r"feira_metrics_zone\s+[^;]*;", ""),
     "\"feira_metrics\" needs a \"feira_metrics_zone\""),
    ((r"(feira_metrics_module\s+metrics;)",
      r"\1 feira_metrics_route a; feira_metrics_route b;"),
     "\"feira_metrics_route\" directive is duplicate"),
])
def test_bad_metrics_configuration_fails_nginx_t(edit, message):
    n = Nginx()
    try:
        with open(n.conf) as f:
            conf = f.read()
        conf, count = re.subn(edit[0], edit[1], conf)
        assert count == 1
        with open(n.conf, "w") as f:
            f.write(conf)
        r = n.test_config()
        assert r.returncode != 0
        assert message in r.stderr, r.stderr
    finally:
        n.cleanup()
