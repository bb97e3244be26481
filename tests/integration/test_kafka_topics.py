"""kafka/ (issue 11): every topic of docs/events.md, with its .dlq, as a
Strimzi KafkaTopic, created on the test stack's broker by
scripts/create-topics.sh (run by scripts/stack.sh) as declared."""

import glob
import os
import re
import subprocess

import yaml
from confluent_kafka.admin import AdminClient, ConfigResource

from feira import ROOT, SCRIPTS, stack_env

TOPICS = os.path.join(ROOT, "kafka", "topics")


def declared():
    out = {}
    for path in sorted(glob.glob(os.path.join(TOPICS, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                assert doc["kind"] == "KafkaTopic", path
                out[doc["spec"]["topicName"]] = doc
    return out


def events_md_topics():
    with open(os.path.join(ROOT, "docs", "events.md")) as f:
        # the topics, not the rows about their dead letter topics
        return {t for t in re.findall(r"^\| `(feira\.[a-z.]+)` \|", f.read(),
                                      re.M) if not t.endswith(".dlq")}


def properties(name):
    with open(os.path.join(ROOT, "kafka", "configs", name)) as f:
        return dict(line.strip().split("=", 1) for line in f
                    if line.strip() and not line.startswith("#"))


def test_every_topic_of_events_md_and_its_dlq_is_declared():
    topics = events_md_topics()
    assert "feira.requests" in topics and len(topics) == 7
    want = topics | {t + ".dlq" for t in topics}
    assert set(declared()) == want


def test_declarations_are_strimzi_topics_for_production():
    for name, doc in declared().items():
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["metadata"]["name"] == name
        assert doc["metadata"]["namespace"] == "kafka"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "feira"
        spec = doc["spec"]
        assert spec["partitions"] >= 3
        assert spec["replicas"] == 3
        cfg = spec["config"]
        assert cfg["min.insync.replicas"] == 2
        assert cfg["cleanup.policy"] in ("delete", "compact")
        assert cfg["retention.ms"] >= 24 * 3600 * 1000


def test_production_settings_replicate_three_times():
    broker = properties("broker.properties")
    assert broker["default.replication.factor"] == "3"
    assert broker["min.insync.replicas"] == "2"
    assert broker["auto.create.topics.enable"] == "false"
    assert broker["unclean.leader.election.enable"] == "false"
    producer = properties("producer.properties")
    assert producer["acks"] == "all"
    assert producer["enable.idempotence"] == "true"
    consumer = properties("consumer.properties")
    assert consumer["enable.auto.offset.store"] == "false"


def test_the_local_broker_has_every_topic_as_declared():
    admin = AdminClient({"bootstrap.servers": stack_env()["KAFKA_BROKERS"]})
    existing = admin.list_topics(timeout=10).topics
    want = declared()
    for name, doc in want.items():
        assert name in existing, name
        assert len(existing[name].partitions) == doc["spec"]["partitions"]
        # one broker: replication 1
        assert all(len(p.replicas) == 1
                   for p in existing[name].partitions.values())

    res = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in want]
    for r, fut in admin.describe_configs(res).items():
        cfg = fut.result()
        spec = want[r.name]["spec"]["config"]
        assert cfg["cleanup.policy"].value == spec["cleanup.policy"]
        assert cfg["retention.ms"].value == str(spec["retention.ms"])
        assert cfg["min.insync.replicas"].value == "1"


def test_create_topics_is_idempotent():
    r = subprocess.run([os.path.join(SCRIPTS, "create-topics.sh"),
                        stack_env()["KAFKA_BROKERS"]],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert f"0 created, {len(declared())} present" in r.stderr
