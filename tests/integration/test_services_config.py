"""feira_services configuration mistakes fail `nginx -t` with a clear
message."""

import re

import pytest

from feira import Nginx


def nginx_t(edit):
    n = Nginx()
    try:
        with open(n.conf) as f:
            conf = f.read()
        conf = edit(conf)
        with open(n.conf, "w") as f:
            f.write(conf)
        return n.test_config()
    finally:
        n.cleanup()


@pytest.mark.parametrize("directive, value, message", [
    ("feira_services_offer_top", "51", "must be 0..50"),
    ("feira_services_max_radius", "0", "must be 1..20000"),
    ("feira_services_match_candidates", "0", "must be 1..100000"),
    ("feira_services_sweep_interval", "10ms", "at least 100ms"),
    ("feira_services_presence_ttl", "0s", "at least 1s"),
    ("feira_services_request_ttl", "forever", "invalid value"),
    ("feira_services_request_cache", "soon", "invalid value"),
])
def test_bad_services_directive_fails_nginx_t(directive, value, message):
    def edit(conf):
        conf, n = re.subn(rf"^(\s*){directive}\s+[^;]*;",
                          rf"\g<1>{directive} {value};", conf, flags=re.M)
        assert n == 1
        return conf
    r = nginx_t(edit)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_unknown_kind_and_regex_location_fail_nginx_t():
    r = nginx_t(lambda c: c.replace("feira_services offerings;",
                                    "feira_services offering;"))
    assert r.returncode != 0
    assert 'unknown feira_services "offering"' in r.stderr

    r = nginx_t(lambda c: c.replace(
        "location /v1/offerings {",
        "location ~ ^/v1/offerings {"))
    assert r.returncode != 0
    assert "belongs in a prefix or exact location" in r.stderr


def test_requests_need_kafka():
    r = nginx_t(lambda c: re.sub(r"^\s*feira_kafka_brokers\s+[^;]*;", "",
                                 c, flags=re.M))
    assert r.returncode != 0
    assert "needs \"feira_kafka_brokers\"" in r.stderr
