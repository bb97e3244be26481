"""`nginx -s reload` under a stream of requests loses none of them."""

import threading
import time

from feira import request


def test_reload_under_load_loses_no_request(nginx_factory):
    n = nginx_factory(workers=2)
    stop = threading.Event()
    results, errors = [], []

    def client():
        while not stop.is_set():
            try:
                results.append(request(n.port, "GET", "/healthz").status)
            except Exception as e:  # noqa: BLE001 - any failure is a loss
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    pids = set()
    try:
        for _ in range(5):
            time.sleep(0.5)
            pids.add(n.get("/healthz").json()["pid"])
            n.reload()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert errors == []
    assert len(results) > 100
    assert set(results) == {200}
    # the reloads really replaced the workers
    assert len(pids) >= 3
