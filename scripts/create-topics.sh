#!/usr/bin/env bash
# Creates the Kafka topics of kafka/topics/*.yaml (Strimzi KafkaTopic
# resources: name, partitions, config) on a broker, idempotently.  Local
# stacks have one broker: replication 1 and min.insync.replicas=1 there.
#
# usage: scripts/create-topics.sh BOOTSTRAP [REPLICATION]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: $0 BOOTSTRAP [REPLICATION]"
py=$FEIRA_VENV/bin/python
[ -x "$py" ] || die "the Python tools are missing: scripts/install-deps.sh python"

"$py" - "$1" "${2:-1}" "$FEIRA_ROOT"/kafka/topics/*.yaml <<'PY'
import sys
import time

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, replication, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

wanted = []
for path in files:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") != "KafkaTopic":
                continue
            spec = doc["spec"]
            config = {k: str(v) for k, v in spec.get("config", {}).items()}
            if replication < int(config.get("min.insync.replicas", 1)):
                config["min.insync.replicas"] = str(replication)
            wanted.append(NewTopic(spec.get("topicName",
                                            doc["metadata"]["name"]),
                                   num_partitions=int(spec["partitions"]),
                                   replication_factor=replication,
                                   config=config))

admin = AdminClient({"bootstrap.servers": bootstrap})

# the broker may still be electing its controller: retry for a minute
deadline = time.monotonic() + 60
while True:
    try:
        existing = admin.list_topics(timeout=10).topics
        break
    except KafkaException as e:
        if time.monotonic() > deadline:
            sys.exit(f"feira: error: kafka {bootstrap}: {e}")
        time.sleep(1)

todo = [t for t in wanted if t.topic not in existing]
for t in wanted:
    if t.topic in existing:
        have = len(existing[t.topic].partitions)
        if have != t.num_partitions:
            print(f"feira: topic {t.topic} has {have} partitions, "
                  f"kafka/topics says {t.num_partitions}", file=sys.stderr)

failed = []
if todo:
    for name, fut in admin.create_topics(todo, request_timeout=30).items():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != e.args[0].TOPIC_ALREADY_EXISTS:
                failed.append(f"{name}: {e}")

if failed:
    sys.exit("feira: error: topics not created: " + "; ".join(failed))
print(f"feira: kafka topics: {len(todo)} created, "
      f"{len(wanted) - len(todo)} present", file=sys.stderr)
PY
