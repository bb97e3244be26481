/*
 * feira-dlq-replay: re-publishes the messages of a dead letter topic to the
 * topic each came from (header feira-original-topic), or to the topic
 * given with -o, then commits its own consumer group's offsets, so a
 * second run replays only what arrived since.  It replays what the topic
 * held when it started, not what arrives meanwhile: an event that fails
 * again comes back to the dead letter topic, and is left for the next run.
 * Replay is at-least-once: the handlers downstream are idempotent.
 *
 * usage: feira-dlq-replay -t <dlq topic> [-o <target topic>] [-g <group>]
 */

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define MAX_PARTS  1024


static int      failed;
static int64_t  high[MAX_PARTS];      /* the end of each partition at start */
static int      done[MAX_PARTS];


static void
delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void) rk;
    (void) opaque;

    if (m->err) {
        fprintf(stderr, "feira-dlq-replay: not delivered to %s: %s\n",
                rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        failed++;
    }
}


static int
set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char  err[512];

    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "feira-dlq-replay: %s=%s: %s\n", k, v, err);
        return -1;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int                               opt, assigned, ndone, p;
    int64_t                           lo;
    char                              err[512], target[256];
    long                              replayed;
    size_t                            size, i;
    time_t                            start;
    const void                       *val;
    const char                       *dlq, *to, *group, *brokers, *name;
    rd_kafka_t                       *consumer, *producer;
    rd_kafka_conf_t                  *cc, *pc;
    rd_kafka_headers_t               *hdrs, *out;
    rd_kafka_message_t               *m;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *topics, *parts;

    dlq = NULL;
    to = NULL;
    group = "feira-dlq-replay";

    while ((opt = getopt(argc, argv, "t:o:g:")) != -1) {
        switch (opt) {
        case 't': dlq = optarg; break;
        case 'o': to = optarg; break;
        case 'g': group = optarg; break;
        default:
            fprintf(stderr, "usage: %s -t <dlq topic> [-o <target topic>] "
                    "[-g <group>]\n", argv[0]);
            return 2;
        }
    }

    if (dlq == NULL) {
        fprintf(stderr, "usage: %s -t <dlq topic> [-o <target topic>] "
                "[-g <group>]\n", argv[0]);
        return 2;
    }

    brokers = getenv("FEIRA_KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0') {
        brokers = "127.0.0.1:9092";
    }

    pc = rd_kafka_conf_new();
    if (set(pc, "bootstrap.servers", brokers) != 0
        || set(pc, "enable.idempotence", "true") != 0
        || set(pc, "acks", "all") != 0)
    {
        return 2;
    }

    rd_kafka_conf_set_dr_msg_cb(pc, delivered);

    producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (producer == NULL) {
        fprintf(stderr, "feira-dlq-replay: %s\n", err);
        return 1;
    }

    cc = rd_kafka_conf_new();
    if (set(cc, "bootstrap.servers", brokers) != 0
        || set(cc, "group.id", group) != 0
        || set(cc, "enable.auto.commit", "false") != 0
        || set(cc, "enable.auto.offset.store", "false") != 0
        || set(cc, "auto.offset.reset", "earliest") != 0
        || set(cc, "enable.partition.eof", "true") != 0)
    {
        return 2;
    }

    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (consumer == NULL) {
        fprintf(stderr, "feira-dlq-replay: %s\n", err);
        return 1;
    }

    rd_kafka_poll_set_consumer(consumer);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, dlq, RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "feira-dlq-replay: subscribe: %s\n",
                rd_kafka_err2str(rc));
        return 1;
    }

    ndone = 0;
    assigned = 0;
    replayed = 0;
    start = time(NULL);

    for ( ;; ) {
        m = rd_kafka_consumer_poll(consumer, 200);

        if (assigned == 0) {
            parts = NULL;
            if (rd_kafka_assignment(consumer, &parts) == 0 && parts) {
                assigned = parts->cnt;

                for (i = 0; i < (size_t) parts->cnt; i++) {
                    p = parts->elems[i].partition;
                    if (p < 0 || p >= MAX_PARTS
                        || rd_kafka_query_watermark_offsets(consumer, dlq, p,
                               &lo, &high[p], 10000)
                           != RD_KAFKA_RESP_ERR_NO_ERROR)
                    {
                        fprintf(stderr, "feira-dlq-replay: no watermarks of "
                                "%s [%d]\n", dlq, p);
                        return 1;
                    }
                }

                rd_kafka_topic_partition_list_destroy(parts);
            }
        }

        if (m == NULL) {
            if (assigned == 0 && time(NULL) - start > 30) {
                fprintf(stderr, "feira-dlq-replay: no partition of %s "
                        "assigned in 30 s\n", dlq);
                break;
            }
            continue;
        }

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF
            || (m->err == 0 && m->partition >= 0 && m->partition < MAX_PARTS
                && m->offset >= high[m->partition]))
        {
            /* this partition is replayed up to where it ended at start */
            if (m->partition >= 0 && m->partition < MAX_PARTS
                && !done[m->partition])
            {
                done[m->partition] = 1;
                ndone++;
            }

            rd_kafka_message_destroy(m);

            if (assigned > 0 && ndone >= assigned) {
                break;
            }
            continue;
        }

        if (m->err) {
            rc = m->err;
            fprintf(stderr, "feira-dlq-replay: %s\n",
                    rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (rc == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                break;
            }
            continue;
        }

        /* where it goes: -o, else its header, else the name less .dlq */
        if (to != NULL) {
            snprintf(target, sizeof(target), "%s", to);

        } else if (rd_kafka_message_headers(m, &hdrs) == 0
                   && rd_kafka_header_get_last(hdrs, "feira-original-topic",
                                               &val, &size) == 0
                   && size < sizeof(target))
        {
            memcpy(target, val, size);
            target[size] = '\0';

        } else {
            snprintf(target, sizeof(target), "%s", rd_kafka_topic_name(m->rkt));
            if (strlen(target) > 4
                && strcmp(target + strlen(target) - 4, ".dlq") == 0)
            {
                target[strlen(target) - 4] = '\0';
            }
        }

        /* the original headers, without those of the dead letter */
        out = rd_kafka_headers_new(4);
        if (rd_kafka_message_headers(m, &hdrs) == 0) {
            for (i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size)
                        == 0; i++)
            {
                if (strncmp(name, "feira-", 6) != 0) {
                    rd_kafka_header_add(out, name, -1, val, size);
                }
            }
        }
        rd_kafka_header_add(out, "feira-replayed-from", -1, dlq, -1);

        rc = rd_kafka_producev(producer,
                               RD_KAFKA_V_TOPIC(target),
                               RD_KAFKA_V_KEY(m->key, m->key_len),
                               RD_KAFKA_V_VALUE(m->payload, m->len),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_HEADERS(out),
                               RD_KAFKA_V_END);

        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "feira-dlq-replay: produce to %s: %s\n", target,
                    rd_kafka_err2str(rc));
            rd_kafka_headers_destroy(out);
            failed++;

        } else {
            replayed++;
            /* committed below, once the broker has what was sent */
            rd_kafka_offset_store(m->rkt, m->partition, m->offset);
        }

        rd_kafka_message_destroy(m);
        rd_kafka_poll(producer, 0);
    }

    if (rd_kafka_flush(producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "feira-dlq-replay: not all delivered in 30 s\n");
        failed++;
    }

    /* only what reached its topic is marked replayed */
    if (failed == 0) {
        rc = rd_kafka_commit(consumer, NULL, 0);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR
            && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        {
            fprintf(stderr, "feira-dlq-replay: commit: %s\n",
                    rd_kafka_err2str(rc));
            failed++;
        }
    }

    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);

    printf("feira-dlq-replay: %ld messages from %s replayed%s\n", replayed,
           dlq, failed ? ", with errors" : "");

    return failed ? 1 : 0;
}
