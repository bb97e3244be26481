"""docs/openapi.yaml is in step with what conf/nginx.conf serves."""

import os
import re

import yaml

from feira import ROOT


def spec():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def locations():
    """The exact-match and the prefix locations of conf/nginx.conf."""
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        conf = f.read()
    exact = set(re.findall(r"location\s+=\s+(\S+)\s*\{", conf))
    prefix = set(re.findall(r"location\s+(/\S+)\s*\{", conf))
    return exact, prefix


def test_openapi_is_3_1_with_problem_errors():
    s = spec()
    assert s["openapi"].startswith("3.1")
    assert "Problem" in s["components"]["schemas"]


def test_every_served_path_is_documented_and_back():
    documented = set(spec()["paths"])
    exact, prefix = locations()
    # each location's own path is documented
    assert (exact | prefix) - documented == set(), "served, not documented"
    # each documented path is served by some location
    unserved = {p for p in documented if "{" not in p and p not in exact
                and not any(p.startswith(pre) for pre in prefix)}
    assert unserved == set(), "documented but not served"


def test_every_operation_has_an_id_and_problem_errors():
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            assert op.get("operationId"), f"{method} {path}"
            for status, resp in op["responses"].items():
                # nginx's own access checks (allow/deny) answer without a body
                if int(status) >= 400 and ("content" in resp
                                           or "$ref" in resp):
                    text = str(resp)
                    assert "Problem" in text or "Unauthorized" in text, \
                        f"{method} {path} {status}"
