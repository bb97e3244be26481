"""Fixtures of the integration suite.  scripts/test-integration.sh starts the
test stack (Redis, FerretDB, Kafka) before pytest runs."""

import pytest

from feira import Nginx, wait_for


@pytest.fixture
def nginx_factory():
    started = []

    def make(template="conf/nginx.conf", workers=1, env=None, start=True,
             conf=None, server_conf=None, directives=None):
        n = Nginx(template=template, workers=workers, env=env)
        started.append(n)
        if conf:
            n.add_conf("test.conf", conf)
        if server_conf:
            n.add_conf("test.conf", server_conf, server=True)
        for name, value in (directives or {}).items():
            n.set_directive(name, value)
        return n.start() if start else n

    yield make

    for n in started:
        n.stop()
        n.check_log()
        n.cleanup()


@pytest.fixture
def nginx(nginx_factory):
    """One nginx with one worker and the whole conf/nginx.conf, ready."""
    n = nginx_factory()
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60,
             what="/readyz 200")
    return n
