"""docs/openapi.yaml is in step with what conf/nginx.conf serves."""

import os
import re

import yaml

from feira import ROOT


def spec():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


METHODS = {"get", "put", "post", "delete", "options", "head", "patch",
           "trace"}


def locations():
    """(modifier, pattern) of every location of conf/nginx.conf."""
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        conf = f.read()
    return re.findall(r"location\s+(=|~\*|~|\^~)?\s*(\S+)\s*\{", conf)


def takes(modifier, pattern, path):
    """Whether one location takes this concrete path: an exact match, a
    regex, or a prefix other than "/"."""
    if modifier == "=":
        return pattern == path
    if modifier in ("~", "~*"):
        return re.search(pattern, path,
                         re.I if modifier == "~*" else 0) is not None
    return pattern != "/" and path.startswith(pattern)


def concrete_paths():
    """The documented paths, with an id for each {parameter}."""
    return [re.sub(r"\{[^}]+\}", "0123456789abcdef01234567", p)
            for p in spec()["paths"]]


def routed(path):
    return any(takes(m, p, path) for m, p in locations())


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
    # each exact-match location is documented
    exact = {p for m, p in locations()
             if m == "=" and not p.startswith("/_")}  # internal ones
    assert exact - documented == set(), "served, not documented"

def test_every_documented_path_is_routed():
    """Paths with parameters are served by prefix or regex locations."""
    for path, concrete in zip(spec()["paths"], concrete_paths()):
        assert routed(concrete), f"{path} is documented but not routed"


def test_every_prefix_and_regex_location_serves_a_documented_path():
    paths = concrete_paths()
    for modifier, pattern in locations():
        # "/" takes what no route does: the 404 problem (test_limits.py);
        # internal locations (rewrite targets) are not the API's paths
        if (modifier != "=" and pattern != "/"
                and not pattern.startswith("/_")):
            assert any(takes(modifier, pattern, p) for p in paths), \
                f"location {modifier} {pattern} serves nothing documented"


def test_every_operation_has_an_id_and_problem_errors():
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue  # parameters, summary: for all operations
            assert op.get("operationId"), f"{method} {path}"
            for status, resp in op["responses"].items():
                # nginx's own access checks (allow/deny) answer without a body
                if int(status) >= 400 and ("content" in resp
                                           or "$ref" in resp):
                    text = str(resp)
                    assert "Problem" in text or "Unauthorized" in text, \
                        f"{method} {path} {status}"
