"""k8s/ and the images (issue 11): manifests valid offline against the
Kubernetes schemas of kubernetes-validate and clean for yamllint; the
ConfigMap's nginx.conf passes nginx -t with the built modules; the
Dockerfiles build the modules the way the Makefile does."""

import glob
import os
import re
import subprocess
import tempfile

import kubernetes_validate
import pytest
import yaml

from feira import ROOT, SCRIPTS, sanitizer_env, stack_env

K8S = os.path.join(ROOT, "k8s")
KUBE_VERSION = "1.30.0"
VENV_BIN = os.path.join(ROOT, "build", "venv", "bin")


def manifests():
    """(file, document) of every manifest under k8s/, templates included."""
    out = []
    for path in sorted(glob.glob(os.path.join(K8S, "**", "*.yaml"),
                                 recursive=True)):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    out.append((os.path.relpath(path, K8S), doc))
    return out


def of_kind(kind):
    return [d for _, d in manifests() if d["kind"] == kind]


def kustomization():
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def test_yamllint_is_clean():
    r = subprocess.run([os.path.join(VENV_BIN, "yamllint"), "-s", "-c",
                        os.path.join(ROOT, ".yamllint"), "k8s", "kafka",
                        "monitoring"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path, doc", manifests(),
                         ids=lambda v: v if isinstance(v, str) else
                         f"{v['kind']}/{v['metadata']['name']}")
def test_manifest_is_valid_for_kubernetes(path, doc):
    # strict: an unknown or misspelt field is an error
    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "feira"


def test_kustomization_lists_every_manifest_but_the_secret_templates():
    k = kustomization()
    listed = set(k["resources"])
    files = {os.path.relpath(p, K8S) for p in
             glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True)}
    files.discard("kustomization.yaml")
    templates = {f for f in files if f.startswith("secrets/")}
    assert templates == {"secrets/feira-secrets.template.yaml"}
    assert listed == files - templates
    assert {i["name"] for i in k["images"]} == {"feira/nginx",
                                                "feira/worker"}


def test_secrets_are_templates_only():
    secrets = of_kind("Secret")
    assert len(secrets) == 1
    for s in secrets:
        assert "data" not in s
        assert all("CHANGE-ME" in v for v in s["stringData"].values())
    # every secret a pod reads is in the template
    keys = set(secrets[0]["stringData"])
    for d in of_kind("Deployment"):
        for v in d["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in v:
                assert v["secret"]["secretName"] == "feira-secrets"
                assert {i["key"] for i in v["secret"]["items"]} <= keys
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "feira-secrets"
                    assert ref["key"] in keys, ref


def test_every_deployment_is_hardened_probed_scaled_and_protected():
    deployments = of_kind("Deployment")
    names = {d["metadata"]["name"] for d in deployments}
    assert names == {"feira-nginx", "notification-worker", "payment-worker",
                     "analytics-worker"}
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h
            for h in of_kind("HorizontalPodAutoscaler")}
    pdbs = {p["metadata"]["name"]: p for p in of_kind("PodDisruptionBudget")}
    for d in deployments:
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == \
            "RuntimeDefault"
        assert pod["terminationGracePeriodSeconds"] >= 30
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"]["cpu"]
            assert c["resources"]["limits"]["memory"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"]
        assert name in hpas and hpas[name]["spec"]["minReplicas"] >= 2
        assert name in pdbs
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= \
            labels.items()

    nginx = next(d for d in deployments
                 if d["metadata"]["name"] == "feira-nginx")
    c = nginx["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "nginx" in " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert {"name": "conf", "configMap": {"name": "feira-nginx-conf"}} in \
        nginx["spec"]["template"]["spec"]["volumes"]


def test_services_select_pods_and_the_ingress_hides_operations():
    pods = [d["spec"]["template"]["metadata"]["labels"]
            for d in of_kind("Deployment")]
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for s in services.values():
        sel = s["spec"]["selector"]
        assert any(sel.items() <= p.items() for p in pods), s
    # the headless Services that prometheus-k8s.yml resolves
    with open(os.path.join(ROOT, "monitoring", "prometheus",
                           "prometheus-k8s.yml")) as f:
        prom = f.read()
    for name in re.findall(r"([a-z-]+)\.feira\.svc\.cluster\.local", prom):
        assert services[name]["spec"]["clusterIP"] == "None"

    (ing,) = of_kind("Ingress")
    paths = [p["path"] for r in ing["spec"]["rules"]
             for p in r["http"]["paths"]]
    assert "/v1/" in paths
    for private in ("/", "/metrics", "/nginx_status", "/readyz"):
        assert private not in paths
    for p in (p for r in ing["spec"]["rules"] for p in r["http"]["paths"]):
        assert p["backend"]["service"]["name"] in services


def test_network_policies_deny_by_default():
    pols = {p["metadata"]["name"]: p for p in of_kind("NetworkPolicy")}
    deny = pols["default-deny"]["spec"]
    assert deny["podSelector"] == {} and \
        set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


def configmap_nginx_conf():
    (cm,) = [d for d in of_kind("ConfigMap")
             if d["metadata"]["name"] == "feira-nginx-conf"]
    return cm["data"]["nginx.conf"]


def test_configmap_nginx_conf_loads_the_modules_of_conf_nginx_conf():
    def modules(text):
        return re.findall(r"^\s*load_module\s+(\S+);", text, re.M)
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        assert modules(f.read()) == modules(configmap_nginx_conf())


def test_configmap_nginx_conf_passes_nginx_t_with_the_built_modules():
    d = tempfile.mkdtemp(prefix="feira-k8s-conf-")
    template = os.path.join(d, "template.conf")
    with open(template, "w") as f:
        f.write(configmap_nginx_conf())
    env = dict(os.environ, **stack_env())
    subprocess.run([os.path.join(SCRIPTS, "render-conf.sh"), template,
                    os.path.join(d, "nginx"), "18080", "2"],
                   check=True, env=env, cwd=ROOT)
    conf = os.path.join(d, "nginx", "nginx.conf")
    r = subprocess.run(["nginx", "-t", "-p", os.path.join(d, "nginx"),
                        "-c", conf, "-e", "stderr"],
                       capture_output=True, text=True,
                       env=sanitizer_env(env, d))
    subprocess.run(["rm", "-rf", d])
    assert r.returncode == 0, r.stderr


# -l name: (Debian 12 package to build with, package to run with)
LIBRARIES = {
    "mongoc-1.0": ("libmongoc-dev", "libmongoc-1.0-0"),
    "bson-1.0": ("libbson-dev", "libbson-1.0-0"),
    "hiredis": ("libhiredis-dev", "libhiredis0.14"),
    "rdkafka": ("librdkafka-dev", "librdkafka1"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "jwt": ("libjwt-dev", "libjwt0"),
    "argon2": ("libargon2-dev", "libargon2-1"),
    "ssl": ("libssl-dev", "libssl3"),
    "crypto": ("libssl-dev", "libssl3"),
    "curl": ("libcurl4-openssl-dev", "libcurl4"),
}

# part of the C library every image has
LIBC = {"m", "dl", "pthread", "rt"}


def dockerfile(name):
    with open(os.path.join(K8S, "images", name)) as f:
        return f.read()


def test_nginx_dockerfile_builds_like_the_makefile():
    text = dockerfile("nginx.Dockerfile")
    with open(os.path.join(ROOT, "Makefile")) as f:
        make = (f.read().replace("$$", "$")
                .replace("$(NGINX_SRC)", "/usr/share/nginx/src"))
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages == ["debian:12", "debian:12-slim"]
    # the Makefile's steps, in the image
    for step in ("cp -r /usr/share/nginx/src", ". ./conf_flags",
                 '"${NGX_CONF_FLAGS[@]}"', "--with-stream=dynamic",
                 "--add-dynamic-module=", "-f objs/Makefile",
                 "sed -n 's/^modules:[[:space:]]*//p' objs/Makefile",
                 "grep -v '^objs/ngx_stream_module\\.so$'"):
        assert step in text, step
        assert step in make, step
    # the very nginx version the modules were built against
    assert "dpkg-query -W -f='${Version}' nginx-dev" in text
    assert '"nginx=$(cat /tmp/nginx-version)"' in text
    # every library the modules link (config's ngx_module_libs) has its
    # -dev package in the build stage and its runtime package in the image
    with open(os.path.join(ROOT, "config")) as f:
        libs = set(re.findall(r"-l([\w.+-]+)", f.read())) - LIBC
    assert libs
    build_stage, runtime = text.split("FROM debian:12-slim")
    for lib in sorted(libs):
        assert lib in LIBRARIES, f"-l{lib}: add it to LIBRARIES and the image"
        dev, run = LIBRARIES[lib]
        assert dev in build_stage, dev
        assert run in runtime, run
    assert re.search(r"^USER 10001", text, re.M)
    assert "nginx -t" in text and "STOPSIGNAL SIGQUIT" in text
    # the entrypoint substitutes the names of scripts/render-conf.sh
    entry = open(os.path.join(K8S, "images", "nginx-entrypoint.sh")).read()
    conf_names = set(re.findall(r"\$\{(FEIRA_[A-Z_]+)\}",
                                configmap_nginx_conf()))
    assert conf_names <= set(re.findall(r"\$\{(FEIRA_[A-Z_]+)\}", entry))


def test_worker_dockerfile_is_small_and_non_root():
    text = dockerfile("worker.Dockerfile")
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["debian:12",
                                                      "debian:12-slim"]
    assert re.search(r"^USER 10001", text, re.M)
    assert "--no-install-recommends" in text
    assert "rm -rf /var/lib/apt/lists/*" in text
    images = {c["image"] for d in of_kind("Deployment")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"feira/nginx:0.1.0", "feira/worker:0.1.0"}


def worker_makefile():
    with open(os.path.join(ROOT, "workers", "Makefile")) as f:
        return f.read()


def test_worker_dockerfile_builds_like_the_makefile():
    text = dockerfile("worker.Dockerfile")
    make = worker_makefile()
    build_stage, runtime = text.split("FROM debian:12-slim")
    assert re.search(r"make -C workers BUILD=(\S+)", build_stage)
    out = re.search(r"make -C workers BUILD=(\S+)", build_stage).group(1)
    # every program of `make workers` reaches the image
    programs = re.search(r"^all:((?:.*\\\n)*.*)$", make, re.M).group(1)
    programs = programs.replace("\\\n", " ").split()
    programs = [p.replace("$(BUILD)/", "") for p in programs]
    assert programs
    for p in programs:
        pattern = "*-worker" if p.endswith("-worker") else p
        assert f"{out}/{pattern}" in build_stage, p
    # what the Makefile reads from the repository is in the build context
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
    for path in set(re.findall(r"\$\(ROOT\)/((?!build/)[\w./-]+)", make)):
        assert any(path.startswith(c.rstrip("/")) for c in copied), path
    # the templates are installed where the binary was told they are
    tpl = re.search(r"NW_TPL=(\S+)", build_stage).group(1)
    tpl = tpl.replace("${TEMPLATES}", re.search(
        r"^ARG TEMPLATES=(\S+)", build_stage, re.M).group(1))
    assert re.search(r"COPY workers/notification-worker/templates\s*\\?\s*"
                     + re.escape(tpl), runtime)
    # pkg-config's libraries: -dev to build, the runtime package to run
    pkgs = re.search(r"pkg-config --libs ([^)]*)\)", make).group(1).split()
    names = {"libmongoc-1.0": "mongoc-1.0", "rdkafka": "rdkafka",
             "jansson": "jansson", "libcurl": "curl"}
    for pkg in pkgs:
        dev, run = LIBRARIES[names[pkg]]
        assert dev in build_stage and run in runtime, pkg
    assert "-lcrypto" in make and "libssl3" in runtime


def worker_settings(name):
    """The environment variables a worker (and workers/common) reads."""
    names = set()
    for path in (glob.glob(os.path.join(ROOT, "workers", name, "*.c"))
                 + glob.glob(os.path.join(ROOT, "workers", "common", "*.c"))):
        with open(path) as f:
            text = f.read()
        # fw_conf_str("FEIRA_X", ...), and the payment worker's secrets
        # (pw_secret("FEIRA_X"): the variable or FEIRA_X_FILE)
        names |= set(re.findall(r'fw_conf_\w+\("(FEIRA_\w+)"', text))
        for name in re.findall(r'\w+_secret\("(FEIRA_\w+)"', text):
            names |= {name, name + "_FILE"}
    return names


def test_worker_deployments_set_only_what_the_workers_read():
    with open(os.path.join(K8S, "secrets",
                           "feira-secrets.template.yaml")) as f:
        secret_keys = set(yaml.safe_load(f)["stringData"])
    checked = 0
    for d in of_kind("Deployment"):
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if "command" not in c:
                continue  # nginx: its image's entrypoint
            name = os.path.basename(c["command"][0])
            if not os.path.isdir(os.path.join(ROOT, "workers", name)):
                continue
            checked += 1
            env = {e["name"]: e for e in c.get("env", [])}
            read = worker_settings(name)
            assert set(env) <= read, (name, sorted(set(env) - read))
            assert {"FEIRA_WORKER_LISTEN", "FEIRA_KAFKA_BROKERS",
                    "FEIRA_WORKER_GROUP", "FEIRA_MONGO_URI"} <= set(env)
            port = env["FEIRA_WORKER_LISTEN"]["value"].rsplit(":", 1)[1]
            assert int(port) in {p["containerPort"] for p in c["ports"]}
            for e in env.values():
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secret_keys, ref
            # files named by the environment are in a mounted secret
            mounts = {m["mountPath"]: m["name"]
                      for m in c.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for e in env.values():
                value = e.get("value", "")
                if not value.startswith("/etc/feira/secrets/"):
                    continue
                vol = volumes[mounts["/etc/feira/secrets"]]["secret"]
                assert os.path.basename(value) in {
                    i["path"] for i in vol["items"]}
                assert {i["key"] for i in vol["items"]} <= secret_keys
                assert pod["securityContext"]["fsGroup"] == 10001
    assert checked >= 1


def feira_locations(text):
    """{location: [its feira_* directives]} of an nginx.conf."""
    text = re.sub(r"#[^\n]*", "", text)
    out = {}
    for where, body in re.findall(r"location\s+([^{]+?)\s*\{([^{}]*)\}",
                                  text):
        directives = [" ".join(d.split()) for d in body.split(";")
                      if d.strip().startswith("feira_")]
        out[" ".join(where.split())] = sorted(directives)
    return out


def test_configmap_routes_are_those_of_conf_nginx_conf():
    """The ConfigMap is kept by hand beside conf/nginx.conf (it listens,
    logs and trusts proxies differently): its API is the same, location
    by location, feira_ directive by directive."""
    with open(os.path.join(ROOT, "conf", "nginx.conf")) as f:
        local = feira_locations(f.read())
    cluster = feira_locations(configmap_nginx_conf())
    assert local
    assert sorted(local) == sorted(cluster)
    for where in local:
        assert local[where] == cluster[where], where
