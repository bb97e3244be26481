/*
 * --rebuild: the aggregates from nothing.  The analytics collections are
 * dropped, then every partition of the topics is read from its beginning
 * to its end (what it holds now) and handled as the consumer group would,
 * in batches; the group's own offsets are not touched.  Stop the running
 * workers first (make analytics-rebuild does), or a concurrent write may
 * land before the drop.  The topics must still hold every event: the
 * numbers are those of what they retain (docs/events.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw.h"
#include "../common/fw_log.h"


static int aw_rebuild_flush(aw_ctx_t *c, rd_kafka_message_t **batch,
    size_t n, size_t *done, size_t *failed);


static int
aw_rebuild_flush(aw_ctx_t *c, rd_kafka_message_t **batch, size_t n,
    size_t *done, size_t *failed)
{
    int        attempt, again;
    size_t     i;
    aw_msg_t  *msgs;

    msgs = calloc(n ? n : 1, sizeof(aw_msg_t));
    if (msgs == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        msgs[i].payload = batch[i]->payload ? batch[i]->payload : "";
        msgs[i].len = batch[i]->len;
    }

    for (attempt = 1; ; attempt++) {
        aw_process(c, msgs, n);

        again = 0;
        for (i = 0; i < n; i++) {
            again |= (msgs[i].result == FW_RETRY);
        }

        if (!again) {
            break;
        }

        if (attempt == 5 || fw_signalled()) {
            fw_log_error("rebuild: %s", msgs[0].error);
            free(msgs);
            return -1;
        }

        sleep(attempt);
    }

    for (i = 0; i < n; i++) {
        if (msgs[i].result == FW_FAIL) {
            (*failed)++;
            fw_log_warn("rebuild: %s [%d] @%lld skipped: %s",
                        rd_kafka_topic_name(batch[i]->rkt),
                        (int) batch[i]->partition,
                        (long long) batch[i]->offset, msgs[i].error);
        } else {
            (*done)++;
        }

        rd_kafka_message_destroy(batch[i]);
    }

    free(msgs);

    return 0;
}


int
aw_rebuild(aw_ctx_t *c, const char *brokers, char **topics, size_t ntopics,
    size_t batch_size)
{
    int                               i, p, rc, idle;
    char                              err[512], group[128];
    size_t                            t, n, nparts, eofs, done, failed;
    rd_kafka_t                       *rk;
    rd_kafka_conf_t                  *conf;
    rd_kafka_message_t              **batch, *m;
    rd_kafka_resp_err_t               kerr;
    const struct rd_kafka_metadata   *md;
    rd_kafka_topic_partition_list_t  *parts;

    if (aw_store_drop(c->store) != 0 || aw_store_indexes(c->store) != 0) {
        return 1;
    }

    snprintf(group, sizeof(group), "feira-analytics-rebuild-%d",
             (int) getpid());

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                          sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        fw_log_error("rebuild: kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fw_log_error("rebuild: kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    rd_kafka_poll_set_consumer(rk);

    parts = rd_kafka_topic_partition_list_new(16);
    batch = calloc(batch_size, sizeof(rd_kafka_message_t *));
    rc = 1;
    n = 0;

    if (parts == NULL || batch == NULL) {
        goto done;
    }

    kerr = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_error("rebuild: metadata: %s", rd_kafka_err2str(kerr));
        goto done;
    }

    for (t = 0; t < ntopics; t++) {
        for (i = 0; i < md->topic_cnt; i++) {
            if (strcmp(md->topics[i].topic, topics[t]) != 0) {
                continue;
            }

            for (p = 0; p < md->topics[i].partition_cnt; p++) {
                rd_kafka_topic_partition_list_add(parts, topics[t],
                                          md->topics[i].partitions[p].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
            }
        }
    }

    rd_kafka_metadata_destroy(md);

    nparts = (size_t) parts->cnt;
    fw_log_info("rebuild: %zu partitions of %zu topics from the beginning",
                nparts, ntopics);

    if (nparts == 0) {
        rc = 0;
        goto done;
    }

    kerr = rd_kafka_assign(rk, parts);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_error("rebuild: assign: %s", rd_kafka_err2str(kerr));
        goto done;
    }

    eofs = 0;
    done = 0;
    failed = 0;
    n = 0;
    idle = 0;

    while (eofs < nparts && !fw_signalled()) {
        m = rd_kafka_consumer_poll(rk, n ? 0 : 500);

        if (m == NULL) {
            if (n == 0 && ++idle > 120) {
                fw_log_error("rebuild: no progress for a minute");
                goto done;
            }

            if (n && aw_rebuild_flush(c, batch, n, &done, &failed) != 0) {
                goto done;
            }

            n = 0;
            continue;
        }

        idle = 0;

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
            rd_kafka_message_destroy(m);
            continue;
        }

        if (m->err) {
            fw_log_warn("rebuild: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }

        batch[n++] = m;

        if (n == batch_size) {
            if (aw_rebuild_flush(c, batch, n, &done, &failed) != 0) {
                n = 0;
                goto done;
            }
            n = 0;
        }
    }

    if (n && aw_rebuild_flush(c, batch, n, &done, &failed) != 0) {
        n = 0;
        goto done;
    }

    n = 0;

    if (fw_signalled()) {
        fw_log_error("rebuild: interrupted");
        goto done;
    }

    fw_log_info("rebuild: done, %zu events, %zu not valid (skipped)", done,
                failed);
    rc = 0;

done:

    while (n > 0) {
        rd_kafka_message_destroy(batch[--n]);
    }

    free(batch);

    if (parts != NULL) {
        rd_kafka_topic_partition_list_destroy(parts);
    }

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    return rc;
}
