"""feira-dlq-replay (workers/dlq-replay) against the test stack's Kafka,
under valgrind's memcheck: each dead letter goes back to the topic its
header names (else the dead letter topic's name less .dlq), with its own
headers but not those of the dead letter; a second run replays nothing."""

import os
import secrets
import subprocess

import memcheck
from feira import ROOT
from notify import Stack

REPLAY = os.path.join(os.environ.get("FEIRA_WORKERS_DIR")
                      or os.path.join(ROOT, "build", "workers"),
                      "dlq-replay")


def replay(stack, dlq, group, wrapper=()):
    env = dict(os.environ, FEIRA_KAFKA_BROKERS=stack.brokers)
    binary = memcheck.plain(REPLAY) if wrapper else REPLAY
    return subprocess.run(list(wrapper) + [binary, "-t", dlq, "-g", group],
                          env=env, capture_output=True, text=True,
                          timeout=180)


def test_replay_runs_clean_under_valgrind(tmp_path):
    stack = Stack()
    try:
        t = f"feira.test.{secrets.token_hex(4)}"
        dlq, origin = f"{t}.requests.dlq", f"{t}.chat"
        dead = {"k1": origin, "k2": origin, "k3": f"{t}.requests"}
        for key, topic in dead.items():
            headers = [("trace", key.encode()),
                       ("feira-error", b"fcm: 503"),
                       ("feira-attempts", b"5")]
            if key != "k3":     # k3: no header, the name less .dlq
                headers.append(("feira-original-topic", topic.encode()))
            stack.producer.produce(dlq, key=key, value=f'{{"k":"{key}"}}',
                                   headers=headers)
        stack.flush()

        report = tmp_path / "memcheck.log"
        group = f"{t}.replay"
        r = replay(stack, dlq, group, memcheck.wrapper(report))
        memcheck.check(report, r.returncode)
        assert "3 messages from" in r.stdout, r.stdout + r.stderr

        got = {}
        for topic in set(dead.values()):
            for m in stack.read_topic(topic):
                got[m.key().decode()] = (topic, dict(m.headers()))
        assert {k: v[0] for k, v in got.items()} == dead
        for key, (_, headers) in got.items():
            assert headers == {"trace": key.encode(),
                               "feira-replayed-from": dlq.encode()}

        # its group's offsets were committed: nothing to replay again
        again = replay(stack, dlq, group)
        assert again.returncode == 0, again.stderr
        assert "0 messages from" in again.stdout, again.stdout
    finally:
        stack.client.close()
