"""A real Prometheus (Debian's `prometheus` package) for the tests: on
127.0.0.1, with its data in a temporary directory, scraping what the test
names and loading Feira's alert rules."""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

import yaml

from feira import ROOT, free_port, wait_for

RULES = os.path.join(ROOT, "monitoring", "prometheus", "rules")


class Prometheus:
    def __init__(self, targets, interval="1s"):
        """TARGETS: {job: ["host:port", ...]}"""
        self.dir = tempfile.mkdtemp(prefix="feira-prometheus-")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": interval,
                       "evaluation_interval": interval},
            "rule_files": [os.path.join(RULES, "*.yml")],
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics",
                 "static_configs": [{"targets": list(t)}]}
                for job, t in targets.items()],
        }
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            yaml.safe_dump(config, f)
        self.log = os.path.join(self.dir, "prometheus.log")
        self.proc = None

    def start(self):
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_for(self.ready, timeout=60, what="prometheus /-/ready")
        return self

    def ready(self):
        assert self.proc.poll() is None, self.tail()
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        return body

    def query(self, expr):
        """The samples of an instant query: [(labels, float)]."""
        body = self.api("query", query=expr)
        assert body["status"] == "success", (expr, body)
        return [(s["metric"], float(s["value"][1]))
                for s in body["data"]["result"]]

    def tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
