/*
 * The consumer loop of the workers.
 *
 * At-least-once: enable.auto.commit=true with enable.auto.offset.store=false;
 * an event's offset becomes storable when its handler finished it (or it
 * was written to the dead letter topic and the broker acknowledged that),
 * and rd_kafka_offsets_store() is given, per partition, one past the last
 * event of the finished prefix.  A crash re-delivers everything after the
 * last commit; handlers are idempotent.
 */

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fw_backoff.h"
#include "fw_conf.h"
#include "fw_log.h"
#include "fw_metrics.h"
#include "fw_offsets.h"
#include "fw_worker.h"


#define FW_ACTIVE    1      /* an attempt runs in the handler */
#define FW_WAITING   2      /* waits for its next attempt */
#define FW_DLQ       3      /* written to the dead letter topic */
#define FW_DLQ_WAIT  4      /* waits to be written there again */


struct fw_part_s {
    char          topic[256];
    int32_t       partition;
    int           assigned;
    unsigned      gen;
    fw_offsets_t  offsets;
    fw_part_t    *next;
};

struct fw_worker_s {
    fw_worker_conf_t   conf;
    fw_handler_t      *handler;
    void              *ctx;
    rd_kafka_t        *consumer;
    rd_kafka_t        *producer;
    fw_part_t         *parts;
    fw_event_t        *waiting;
    size_t             active;
    size_t             nwaiting;
    int                stopping;
    fw_event_t       **batch;
};

typedef struct {
    fw_dlq_cb          cb;
    void              *arg;
    fw_event_t        *event;
} fw_dlq_ctx_t;


static volatile sig_atomic_t  fw_signal_seen;


static void fw_on_signal(int sig);
static fw_part_t *fw_part(fw_worker_t *w, const char *topic, int32_t p);
static void fw_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque);
static int fw_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque);
static void fw_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);
static void fw_event_release(fw_event_t *ev);
static void fw_event_dead_letter(fw_event_t *ev);
static void fw_event_dlq_done(void *arg, int ok);
static void fw_fire_waiting(fw_worker_t *w, int64_t now);
static void fw_store_offsets(fw_worker_t *w);
static void fw_drop_waiting(fw_worker_t *w);
static void fw_drain(fw_worker_t *w, int timeout_ms);
static size_t fw_consume(fw_worker_t *w, int wait_ms);
static int fw_set(rd_kafka_conf_t *c, const char *k, const char *v);


int64_t
fw_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
fw_wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


uint32_t
fw_random(void)
{
    uint32_t  r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
        r = (uint32_t) rand();
    }

    return r;
}


static void
fw_on_signal(int sig)
{
    (void) sig;
    fw_signal_seen = 1;
}


void
fw_signals_init(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fw_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}


int
fw_signalled(void)
{
    return fw_signal_seen;
}


int
fw_worker_stopping(fw_worker_t *w)
{
    return w->stopping;
}


/* the framework's settings from the environment (see workers/README.md) */

void
fw_worker_conf_env(fw_worker_conf_t *conf, const char *name,
    const char *group, const char *topics)
{
    char        *list, *tok, *save;
    size_t       n;
    const char  *p;

    memset(conf, 0, sizeof(*conf));

    conf->name = name;
    conf->brokers = fw_conf_str("FEIRA_KAFKA_BROKERS", "127.0.0.1:9092");
    conf->group = fw_conf_str("FEIRA_WORKER_GROUP", group);
    conf->group_instance_id = fw_conf_str("FEIRA_WORKER_INSTANCE_ID", NULL);
    conf->dlq_topic = fw_conf_str("FEIRA_WORKER_DLQ_TOPIC", NULL);
    conf->max_attempts = fw_conf_int("FEIRA_WORKER_ATTEMPTS", 5, 1, 100);
    conf->backoff_base_ms = fw_conf_int("FEIRA_WORKER_BACKOFF_MS", 500, 1,
                                        3600000);
    conf->backoff_max_ms = fw_conf_int("FEIRA_WORKER_BACKOFF_MAX_MS", 30000, 1,
                                       86400000);
    conf->batch = fw_conf_int("FEIRA_WORKER_BATCH", 256, 1, 10000);
    conf->max_inflight = fw_conf_int("FEIRA_WORKER_MAX_INFLIGHT", 2048, 1,
                                     1000000);
    conf->session_timeout_ms = fw_conf_int("FEIRA_KAFKA_SESSION_TIMEOUT_MS",
                                           10000, 1000, 3600000);
    conf->stats_interval_ms = fw_conf_int("FEIRA_WORKER_STATS_MS", 5000, 0,
                                          3600000);
    conf->drain_timeout_ms = fw_conf_int("FEIRA_WORKER_DRAIN_MS", 30000, 0,
                                         3600000);

    p = fw_conf_str("FEIRA_WORKER_TOPICS", topics);

    list = strdup(p);
    if (list == NULL) {
        fw_log_error("out of memory");
        exit(1);
    }

    n = 1;
    for (tok = list; *tok; tok++) {
        n += (*tok == ',');
    }

    conf->topics = calloc(n, sizeof(char *));
    if (conf->topics == NULL) {
        fw_log_error("out of memory");
        exit(1);
    }

    for (tok = strtok_r(list, ", ", &save); tok != NULL;
         tok = strtok_r(NULL, ", ", &save))
    {
        conf->topics[conf->ntopics++] = tok;
    }

    if (conf->ntopics == 0) {
        fw_log_error("FEIRA_WORKER_TOPICS names no topic");
        exit(2);
    }
}


static int
fw_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char  err[512];

    if (v == NULL) {
        return 0;
    }

    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fw_log_error("kafka setting %s=%s: %s", k, v, err);
        return -1;
    }

    return 0;
}


fw_worker_t *
fw_worker_new(fw_worker_conf_t *conf, fw_handler_t *h, void *ctx)
{
    char                              err[512], num[32];
    size_t                            i;
    fw_worker_t                      *w;
    rd_kafka_conf_t                  *cc, *pc;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *topics;

    w = calloc(1, sizeof(fw_worker_t));
    if (w == NULL) {
        return NULL;
    }

    w->conf = *conf;
    w->handler = h;
    w->ctx = ctx;

    w->batch = calloc(conf->batch, sizeof(fw_event_t *));
    if (w->batch == NULL) {
        free(w);
        return NULL;
    }

    /* the producer of the dead letter topic: idempotent, acks=all */

    pc = rd_kafka_conf_new();

    if (fw_set(pc, "bootstrap.servers", conf->brokers) != 0
        || fw_set(pc, "client.id", conf->name) != 0
        || fw_set(pc, "enable.idempotence", "true") != 0
        || fw_set(pc, "acks", "all") != 0
        || fw_set(pc, "linger.ms", "5") != 0
        || fw_set(pc, "message.timeout.ms", "30000") != 0)
    {
        rd_kafka_conf_destroy(pc);
        goto failed;
    }

    rd_kafka_conf_set_dr_msg_cb(pc, fw_delivered);
    rd_kafka_conf_set_opaque(pc, w);

    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (w->producer == NULL) {
        fw_log_error("kafka producer: %s", err);
        rd_kafka_conf_destroy(pc);
        goto failed;
    }

    /* the consumer group */

    cc = rd_kafka_conf_new();

    snprintf(num, sizeof(num), "%d", conf->session_timeout_ms);

    if (fw_set(cc, "bootstrap.servers", conf->brokers) != 0
        || fw_set(cc, "client.id", conf->name) != 0
        || fw_set(cc, "group.id", conf->group) != 0
        || fw_set(cc, "group.instance.id", conf->group_instance_id) != 0
        || fw_set(cc, "enable.auto.commit", "true") != 0
        || fw_set(cc, "auto.commit.interval.ms", "1000") != 0
        || fw_set(cc, "enable.auto.offset.store", "false") != 0
        || fw_set(cc, "auto.offset.reset", "earliest") != 0
        || fw_set(cc, "allow.auto.create.topics", "true") != 0
        || fw_set(cc, "session.timeout.ms", num) != 0)
    {
        rd_kafka_conf_destroy(cc);
        goto failed;
    }

    if (conf->stats_interval_ms > 0) {
        snprintf(num, sizeof(num), "%d", conf->stats_interval_ms);
        if (fw_set(cc, "statistics.interval.ms", num) != 0) {
            rd_kafka_conf_destroy(cc);
            goto failed;
        }
        rd_kafka_conf_set_stats_cb(cc, fw_stats);
    }

    rd_kafka_conf_set_rebalance_cb(cc, fw_rebalance);
    rd_kafka_conf_set_opaque(cc, w);

    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (w->consumer == NULL) {
        fw_log_error("kafka consumer: %s", err);
        rd_kafka_conf_destroy(cc);
        goto failed;
    }

    rd_kafka_poll_set_consumer(w->consumer);

    topics = rd_kafka_topic_partition_list_new(conf->ntopics);
    if (topics == NULL) {
        goto failed;
    }

    for (i = 0; i < conf->ntopics; i++) {
        rd_kafka_topic_partition_list_add(topics, conf->topics[i],
                                          RD_KAFKA_PARTITION_UA);
    }

    rc = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_error("kafka subscribe: %s", rd_kafka_err2str(rc));
        goto failed;
    }

    fw_log_info("consumer group \"%s\" on %s, %zu topics", conf->group,
                conf->brokers, conf->ntopics);

    return w;

failed:

    fw_worker_free(w);

    return NULL;
}


void
fw_worker_free(fw_worker_t *w)
{
    fw_part_t  *p, *next;

    if (w == NULL) {
        return;
    }

    fw_drop_waiting(w);

    if (w->consumer != NULL) {
        rd_kafka_destroy(w->consumer);
    }

    if (w->producer != NULL) {
        rd_kafka_destroy(w->producer);
    }

    for (p = w->parts; p != NULL; p = next) {
        next = p->next;
        fw_offsets_free(&p->offsets);
        free(p);
    }

    free(w->batch);
    free(w);
}


static fw_part_t *
fw_part(fw_worker_t *w, const char *topic, int32_t partition)
{
    fw_part_t  *p;

    for (p = w->parts; p != NULL; p = p->next) {
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            return p;
        }
    }

    p = calloc(1, sizeof(fw_part_t));
    if (p == NULL) {
        return NULL;
    }

    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->partition = partition;
    fw_offsets_init(&p->offsets);
    p->next = w->parts;
    w->parts = p;

    return p;
}


static void
fw_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int                          i;
    fw_part_t                   *p;
    fw_worker_t                 *w;
    rd_kafka_resp_err_t          rc;
    rd_kafka_topic_partition_t  *tp;

    w = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (i = 0; i < parts->cnt; i++) {
            tp = &parts->elems[i];
            p = fw_part(w, tp->topic, tp->partition);
            if (p == NULL) {
                fw_log_error("out of memory");
                continue;
            }

            p->assigned = 1;
            p->gen++;
            fw_offsets_free(&p->offsets);
        }

        fw_log_info("assigned %d partitions", parts->cnt);
        rd_kafka_assign(rk, parts);
        fw_metrics_ready(1);
        return;
    }

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /*
         * finish what runs, store and commit, then let go: the next owner
         * starts after the last event done here; events waiting for a
         * retry are left to it
         */

        fw_drain(w, w->conf.drain_timeout_ms);
        fw_store_offsets(w);

        rc = rd_kafka_commit(rk, NULL, 0);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR
            && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        {
            fw_log_warn("commit on revoke: %s", rd_kafka_err2str(rc));
        }

        fw_drop_waiting(w);

        for (p = w->parts; p != NULL; p = p->next) {
            p->assigned = 0;
            p->gen++;
            fw_offsets_free(&p->offsets);
        }

        fw_metrics_lag_clear();
        fw_metrics_ready(0);
        fw_log_info("revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
        return;
    }

    fw_log_error("rebalance: %s", rd_kafka_err2str(err));
    fw_metrics_ready(0);
    rd_kafka_assign(rk, NULL);
}


/* the consumer lag per assigned partition, from librdkafka's statistics */

static int
fw_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    int32_t       partition;
    json_t       *root, *topics, *topic, *parts, *part, *v;
    int64_t       lag;
    fw_part_t    *p;
    const char   *tname, *pname, *state;
    fw_worker_t  *w;

    (void) rk;
    w = opaque;

    root = json_loadb(json, len, 0, NULL);
    if (root == NULL) {
        return 0;
    }

    topics = json_object_get(root, "topics");

    json_object_foreach(topics, tname, topic) {
        parts = json_object_get(topic, "partitions");

        json_object_foreach(parts, pname, part) {
            partition = atoi(pname);
            if (partition < 0) {
                continue;
            }

            state = json_string_value(json_object_get(part, "fetch_state"));
            if (state == NULL || strcmp(state, "none") == 0) {
                continue;
            }

            for (p = w->parts; p != NULL; p = p->next) {
                if (p->assigned && p->partition == partition
                    && strcmp(p->topic, tname) == 0)
                {
                    break;
                }
            }

            if (p == NULL) {
                continue;
            }

            v = json_object_get(part, "consumer_lag_stored");
            lag = json_is_integer(v) ? json_integer_value(v) : -1;

            if (lag < 0) {
                v = json_object_get(part, "consumer_lag");
                lag = json_is_integer(v) ? json_integer_value(v) : -1;
            }

            if (lag >= 0) {
                fw_metrics_lag(tname, partition, lag);
            }
        }
    }

    json_decref(root);

    return 0;
}


void
fw_event_done(fw_event_t *ev, fw_result_e rc, const char *error)
{
    int64_t       now;
    fw_worker_t  *w;

    w = ev->worker;
    now = fw_now_ms();

    fw_metrics_observe(ev->topic, (double) (now - ev->started) / 1000.0);

    if (error != NULL) {
        snprintf(ev->error, sizeof(ev->error), "%s", error);
    }

    if (rc == FW_OK) {
        fw_metrics_processed(ev->topic);
        w->active--;
        fw_event_release(ev);
        return;
    }

    if (rc == FW_RETRY && ev->attempts < w->conf.max_attempts
        && !w->stopping)
    {
        ev->due = now + fw_backoff_ms(ev->attempts, w->conf.backoff_base_ms,
                                      w->conf.backoff_max_ms, fw_random());
        ev->state = FW_WAITING;
        ev->next = w->waiting;
        w->waiting = ev;
        w->active--;
        w->nwaiting++;

        fw_metrics_retried(ev->topic);
        fw_log_info("%s [%d] @%lld: attempt %u failed (%s), again in %lld ms",
                    ev->topic, (int) ev->msg->partition,
                    (long long) ev->msg->offset, ev->attempts, ev->error,
                    (long long) (ev->due - now));
        return;
    }

    if (rc == FW_RETRY && w->stopping) {
        /* not dead: left for the next consumer, its offset not stored */
        w->active--;
        ev->part = NULL;
        fw_event_release(ev);
        return;
    }

    fw_event_dead_letter(ev);
}


static void
fw_event_dead_letter(fw_event_t *ev)
{
    fw_worker_t  *w;

    w = ev->worker;
    ev->state = FW_DLQ;

    if (fw_worker_dead_letter(w, ev->topic, ev->msg->key, ev->msg->key_len,
                              ev->msg->payload, ev->msg->len, ev->error,
                              ev->attempts, fw_event_dlq_done, ev)
        != 0)
    {
        fw_event_dlq_done(ev, 0);
    }
}


static void
fw_event_dlq_done(void *arg, int ok)
{
    fw_event_t   *ev;
    fw_worker_t  *w;

    ev = arg;
    w = ev->worker;

    if (ok) {
        fw_metrics_dead_lettered(ev->topic);
        fw_log_warn("%s [%d] @%lld: dead-lettered after %u attempts: %s",
                    ev->topic, (int) ev->msg->partition,
                    (long long) ev->msg->offset, ev->attempts, ev->error);
        w->active--;
        fw_event_release(ev);
        return;
    }

    /* the offset must not pass an event that is nowhere: try again */
    ev->state = FW_DLQ_WAIT;
    ev->due = fw_now_ms() + 1000;
    ev->next = w->waiting;
    w->waiting = ev;
    w->active--;
    w->nwaiting++;
}


/* the offset of the event becomes storable; the event is freed */

static void
fw_event_release(fw_event_t *ev)
{
    fw_part_t  *p;

    p = ev->part;

    if (p != NULL && p->assigned && p->gen == ev->gen) {
        if (fw_offsets_done(&p->offsets, ev->msg->offset) != 0) {
            fw_log_error("%s [%d] @%lld: offset was not in flight",
                         ev->topic, (int) ev->msg->partition,
                         (long long) ev->msg->offset);
        }
    }

    rd_kafka_message_destroy(ev->msg);
    free(ev);
}


int
fw_worker_dead_letter(fw_worker_t *w, const char *topic, const char *key,
    size_t klen, const char *value, size_t vlen, const char *error,
    unsigned attempts, fw_dlq_cb cb, void *arg)
{
    char                 dlq[300], num[32], ts[32];
    time_t               now;
    struct tm            tm;
    fw_dlq_ctx_t        *dc;
    rd_kafka_headers_t  *hdrs;
    rd_kafka_resp_err_t  rc;

    if (w->conf.dlq_topic != NULL) {
        snprintf(dlq, sizeof(dlq), "%s", w->conf.dlq_topic);

    } else {
        snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
    }

    dc = malloc(sizeof(fw_dlq_ctx_t));
    if (dc == NULL) {
        return -1;
    }

    dc->cb = cb;
    dc->arg = arg;

    hdrs = rd_kafka_headers_new(6);
    if (hdrs == NULL) {
        free(dc);
        return -1;
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(num, sizeof(num), "%u", attempts);

    rd_kafka_header_add(hdrs, "feira-error", -1, error, -1);
    rd_kafka_header_add(hdrs, "feira-original-topic", -1, topic, -1);
    rd_kafka_header_add(hdrs, "feira-attempts", -1, num, -1);
    rd_kafka_header_add(hdrs, "feira-failed-at", -1, ts, -1);
    rd_kafka_header_add(hdrs, "feira-worker", -1, w->conf.name, -1);

    rc = rd_kafka_producev(w->producer,
                           RD_KAFKA_V_TOPIC(dlq),
                           RD_KAFKA_V_KEY((void *) key, klen),
                           RD_KAFKA_V_VALUE((void *) value, vlen),
                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_HEADERS(hdrs),
                           RD_KAFKA_V_OPAQUE(dc),
                           RD_KAFKA_V_END);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_error("produce to %s: %s", dlq, rd_kafka_err2str(rc));
        rd_kafka_headers_destroy(hdrs);
        free(dc);
        return -1;
    }

    return 0;
}


static void
fw_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    fw_dlq_ctx_t  *dc;

    (void) rk;
    (void) opaque;

    dc = m->_private;

    if (m->err) {
        fw_log_error("dead letter to %s not delivered: %s",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }

    dc->cb(dc->arg, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
    free(dc);
}


static void
fw_fire_waiting(fw_worker_t *w, int64_t now)
{
    size_t       n;
    fw_event_t  *ev, **pp;

    n = 0;
    pp = &w->waiting;

    while ((ev = *pp) != NULL) {
        if (ev->due > now || n == w->conf.batch) {
            pp = &ev->next;
            continue;
        }

        *pp = ev->next;
        w->nwaiting--;
        w->active++;

        if (ev->state == FW_DLQ_WAIT) {
            fw_event_dead_letter(ev);
            continue;
        }

        ev->state = FW_ACTIVE;
        ev->attempts++;
        ev->started = now;
        w->batch[n++] = ev;
    }

    if (n > 0) {
        w->handler->handle(w->ctx, w->batch, n);
    }
}


/* events waiting for a retry are given up: their offsets are not stored */

static void
fw_drop_waiting(fw_worker_t *w)
{
    fw_event_t  *ev, *next;

    for (ev = w->waiting; ev != NULL; ev = next) {
        next = ev->next;
        rd_kafka_message_destroy(ev->msg);
        free(ev);
    }

    w->waiting = NULL;
    w->nwaiting = 0;
}


static void
fw_store_offsets(fw_worker_t *w)
{
    int64_t                           commit;
    fw_part_t                        *p;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *list;

    list = NULL;

    for (p = w->parts; p != NULL; p = p->next) {
        if (!p->assigned || !fw_offsets_take(&p->offsets, &commit)) {
            continue;
        }

        if (list == NULL) {
            list = rd_kafka_topic_partition_list_new(8);
            if (list == NULL) {
                return;
            }
        }

        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)
            ->offset = commit;
    }

    if (list == NULL) {
        return;
    }

    rc = rd_kafka_offsets_store(w->consumer, list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_warn("offsets store: %s", rd_kafka_err2str(rc));
    }

    rd_kafka_topic_partition_list_destroy(list);
}


static void
fw_drain(fw_worker_t *w, int timeout_ms)
{
    int64_t  deadline;

    deadline = fw_now_ms() + timeout_ms;

    while (w->active > 0 && fw_now_ms() < deadline) {
        rd_kafka_poll(w->producer, 0);
        w->handler->poll(w->ctx, 20);
        w->handler->tick(w->ctx, 1);
    }

    if (w->active > 0) {
        fw_log_warn("%zu events still running after %d ms", w->active,
                    timeout_ms);
    }
}


/*
 * Takes up to a batch of messages; waits at most wait_ms for the first.
 * When the events in flight are at the cap, nothing is taken until there
 * is room for a whole batch again: under load the handler gets full
 * batches, not one batch per handful of finished events (its per-batch
 * cost, the store's queries, is paid once for many events).
 */

static size_t
fw_consume(fw_worker_t *w, int wait_ms)
{
    size_t               n, room;
    int64_t              now;
    fw_part_t           *p;
    fw_event_t          *ev;
    rd_kafka_message_t  *m;

    n = 0;
    now = fw_now_ms();

    room = w->conf.max_inflight > w->active + w->nwaiting
           ? w->conf.max_inflight - w->active - w->nwaiting : 0;

    if (room < w->conf.batch && room < w->conf.max_inflight) {
        return 0;
    }

    while (n < w->conf.batch && w->active + w->nwaiting < w->conf.max_inflight)
    {
        m = rd_kafka_consumer_poll(w->consumer, n == 0 ? wait_ms : 0);
        if (m == NULL) {
            break;
        }

        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fw_log_warn("consumer: %s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }

        p = fw_part(w, rd_kafka_topic_name(m->rkt), m->partition);

        ev = calloc(1, sizeof(fw_event_t));

        if (p == NULL || ev == NULL || fw_offsets_add(&p->offsets, m->offset))
        {
            /* not stored, so it comes back after a restart */
            fw_log_error("out of memory for %s [%d] @%lld",
                         rd_kafka_topic_name(m->rkt), (int) m->partition,
                         (long long) m->offset);
            free(ev);
            rd_kafka_message_destroy(m);
            continue;
        }

        ev->msg = m;
        ev->topic = rd_kafka_topic_name(m->rkt);
        ev->worker = w;
        ev->part = p;
        ev->gen = p->gen;
        ev->attempts = 1;
        ev->state = FW_ACTIVE;
        ev->started = now;

        w->active++;
        w->batch[n++] = ev;
    }

    if (n > 0) {
        w->handler->handle(w->ctx, w->batch, n);
    }

    return n;
}


int
fw_worker_run(fw_worker_t *w)
{
    int                  wait, idle;
    size_t               n;
    int64_t              now, next;
    fw_event_t          *ev;
    rd_kafka_resp_err_t  rc;

    for ( ;; ) {
        if (fw_signal_seen && !w->stopping) {
            w->stopping = 1;
            fw_log_info("stopping: finishing %zu events in flight", w->active);
        }

        rd_kafka_poll(w->producer, 0);

        now = fw_now_ms();

        if (!w->stopping) {
            fw_fire_waiting(w, now);
        }

        idle = (w->active == 0
                && (w->handler->busy == NULL || w->handler->busy(w->ctx) == 0));

        if (w->stopping) {
            if (idle) {
                break;
            }

            w->handler->poll(w->ctx, 20);
            w->handler->tick(w->ctx, 1);
            fw_store_offsets(w);
            continue;
        }

        /* block in Kafka when nothing else runs, in the handler otherwise */

        wait = 0;

        if (idle) {
            wait = 100;
            next = -1;

            for (ev = w->waiting; ev != NULL; ev = ev->next) {
                if (next == -1 || ev->due < next) {
                    next = ev->due;
                }
            }

            if (next != -1 && next - now < wait) {
                wait = next - now > 0 ? (int) (next - now) : 0;
            }
        }

        n = fw_consume(w, wait);

        w->handler->poll(w->ctx, n == w->conf.batch ? 0 : 5);
        w->handler->tick(w->ctx, 0);
        fw_store_offsets(w);
    }

    /* every event is finished or given up; store, commit, leave the group */

    fw_drop_waiting(w);
    fw_store_offsets(w);

    rc = rd_kafka_commit(w->consumer, NULL, 0);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        fw_log_warn("final commit: %s", rd_kafka_err2str(rc));
    }

    rc = rd_kafka_consumer_close(w->consumer);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_warn("consumer close: %s", rd_kafka_err2str(rc));
    }

    if (rd_kafka_flush(w->producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_error("dead letters not flushed in 30 s");
    }

    fw_log_info("stopped");

    return 0;
}
