"""docs/openapi.yaml is in step with what conf/nginx.conf serves."""

import os
import re

import yaml

from feira import ROOT


def spec():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def served_paths():
    """Exact-match locations of conf/nginx.conf, {param} for regex parts."""
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        conf = f.read()
    paths = set(re.findall(r"location\s+=\s+(\S+)\s*\{", conf))
    paths.discard("/nginx_status")  # stub_status: nginx's own, loopback
    return paths


def test_openapi_is_3_1_with_problem_errors():
    s = spec()
    assert s["openapi"].startswith("3.1")
    assert "Problem" in s["components"]["schemas"]


def served_prefixes():
    """Prefix locations whose module routes what follows the prefix
    itself (feira_services: /v1/requests, /v1/requests/{id}/accept...);
    internal locations are not served to clients."""
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        conf = f.read()
    prefixes = set()
    blocks = re.split(r"\blocation\s+", conf)[1:]
    for block in blocks:
        m = re.match(r"(/\S*)\s*\{", block)
        if m and "internal;" not in block and re.search(
                r"^\s*feira_services\s", block, re.M):
            prefixes.add(m.group(1))
    return prefixes


def under(path, prefix):
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def test_every_served_path_is_documented_and_back():
    documented = set(spec()["paths"])
    served = served_paths()
    prefixes = served_prefixes()
    assert served - documented == set(), "served but not documented"
    assert {p for p in documented if "{" not in p
            and not any(under(p, x) for x in prefixes)} - served == set(), \
        "documented but not served"


def test_every_prefix_route_is_documented_and_back():
    documented = set(spec()["paths"])
    prefixes = served_prefixes()
    assert prefixes, "no prefix location found in conf/nginx.conf"
    for prefix in prefixes:
        assert any(under(p, prefix) for p in documented), \
            f"{prefix} served but nothing under it documented"
    for p in documented:
        if p.startswith("/v1/") and p not in served_paths():
            assert any(under(p, x) for x in prefixes), \
                f"{p} documented but not served"


def test_every_operation_has_an_id_and_problem_errors():
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method == "parameters":      # shared by the operations
                continue
            assert op.get("operationId"), f"{method} {path}"
            for status, resp in op["responses"].items():
                if int(status) >= 400:
                    text = str(resp)
                    assert "Problem" in text or "Unauthorized" in text, \
                        f"{method} {path} {status}"
