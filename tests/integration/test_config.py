"""Configuration mistakes are caught by `nginx -t` with a clear message."""

import re

import pytest

from feira import Nginx


@pytest.mark.parametrize("directive, value, message", [
    ("feira_mongo_uri", '"http://nope"', "invalid \"feira_mongo_uri\""),
    ("feira_redis", "127.0.0.1:notaport", "invalid \"feira_redis\""),
    ("feira_kafka_brokers", "127.0.0.1:9092,nohost", "invalid broker \"nohost\""),
    ("feira_body_limit", "0", "\"feira_body_limit\" must be greater than 0"),
    ("feira_thread_pool", "nosuchpool", "unknown thread pool \"nosuchpool\""),
])
def test_bad_directive_fails_nginx_t(directive, value, message):
    n = Nginx()
    try:
        with open(n.conf) as f:
            conf = f.read()
        conf, count = re.subn(rf"^(\s*){directive}\s+[^;]*;",
                              rf"\g<1>{directive} {value};", conf, flags=re.M)
        assert count == 1
        with open(n.conf, "w") as f:
            f.write(conf)
        r = n.test_config()
        assert r.returncode != 0
        assert message in r.stderr
    finally:
        n.cleanup()


def test_the_shipped_configuration_passes_nginx_t():
    n = Nginx()
    try:
        r = n.test_config()
        assert r.returncode == 0, r.stderr
    finally:
        n.cleanup()
