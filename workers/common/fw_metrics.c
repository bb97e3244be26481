/*
 * Metrics of a worker: the consumer's standard families, per topic, and a
 * few counters a worker adds by name.  A mutex guards them: the HTTP
 * thread renders while the main loop counts.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_metrics.h"


#define FW_TOPICS    32
#define FW_LAGS      512
#define FW_COUNTERS  512
#define FW_BUCKETS   12


typedef struct {
    char      name[128];
    double    processed;
    double    retried;
    double    dead;
    double    buckets[FW_BUCKETS];
    double    sum;
    double    count;
} fw_topic_metrics_t;

typedef struct {
    char      topic[128];
    int32_t   partition;
    int64_t   lag;
} fw_lag_t;

typedef struct {
    char        labels[160];
    const char *name;
    const char *help;
    double      value;
} fw_counter_t;

typedef struct {
    char  *buf;
    size_t len;
    size_t cap;
    int    failed;
} fw_buf_t;


static const double  fw_bounds[FW_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

static pthread_mutex_t     fw_mtx = PTHREAD_MUTEX_INITIALIZER;
static fw_topic_metrics_t  fw_topics[FW_TOPICS];
static size_t              fw_ntopics;
static fw_lag_t            fw_lags[FW_LAGS];
static size_t              fw_nlags;
static fw_counter_t        fw_counters[FW_COUNTERS];
static size_t              fw_ncounters;
static int                 fw_ready;


static fw_topic_metrics_t *fw_topic(const char *topic);
static void fw_printf(fw_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


int
fw_metrics_init(void)
{
    pthread_mutex_lock(&fw_mtx);
    fw_ntopics = 0;
    fw_nlags = 0;
    fw_ncounters = 0;
    pthread_mutex_unlock(&fw_mtx);

    return 0;
}


/* with the mutex held; the last slot absorbs an overflow of topics */

static fw_topic_metrics_t *
fw_topic(const char *topic)
{
    size_t  i;

    for (i = 0; i < fw_ntopics; i++) {
        if (strcmp(fw_topics[i].name, topic) == 0) {
            return &fw_topics[i];
        }
    }

    if (fw_ntopics == FW_TOPICS) {
        return &fw_topics[FW_TOPICS - 1];
    }

    memset(&fw_topics[fw_ntopics], 0, sizeof(fw_topic_metrics_t));
    snprintf(fw_topics[fw_ntopics].name, sizeof(fw_topics[0].name), "%s",
             topic);

    return &fw_topics[fw_ntopics++];
}


void
fw_metrics_processed(const char *topic)
{
    pthread_mutex_lock(&fw_mtx);
    fw_topic(topic)->processed++;
    pthread_mutex_unlock(&fw_mtx);
}


void
fw_metrics_retried(const char *topic)
{
    pthread_mutex_lock(&fw_mtx);
    fw_topic(topic)->retried++;
    pthread_mutex_unlock(&fw_mtx);
}


void
fw_metrics_dead_lettered(const char *topic)
{
    pthread_mutex_lock(&fw_mtx);
    fw_topic(topic)->dead++;
    pthread_mutex_unlock(&fw_mtx);
}


void
fw_metrics_observe(const char *topic, double seconds)
{
    size_t               i;
    fw_topic_metrics_t  *t;

    pthread_mutex_lock(&fw_mtx);

    t = fw_topic(topic);

    for (i = 0; i < FW_BUCKETS; i++) {
        if (seconds <= fw_bounds[i]) {
            t->buckets[i]++;
        }
    }

    t->sum += seconds;
    t->count++;

    pthread_mutex_unlock(&fw_mtx);
}


void
fw_metrics_lag(const char *topic, int32_t partition, int64_t lag)
{
    size_t  i;

    pthread_mutex_lock(&fw_mtx);

    for (i = 0; i < fw_nlags; i++) {
        if (fw_lags[i].partition == partition
            && strcmp(fw_lags[i].topic, topic) == 0)
        {
            fw_lags[i].lag = lag;
            pthread_mutex_unlock(&fw_mtx);
            return;
        }
    }

    if (fw_nlags < FW_LAGS) {
        snprintf(fw_lags[fw_nlags].topic, sizeof(fw_lags[0].topic), "%s",
                 topic);
        fw_lags[fw_nlags].partition = partition;
        fw_lags[fw_nlags].lag = lag;
        fw_nlags++;
    }

    pthread_mutex_unlock(&fw_mtx);
}


/* the consumer is in its group, with its assignment (maybe empty) */

void
fw_metrics_ready(int ready)
{
    pthread_mutex_lock(&fw_mtx);
    fw_ready = ready;
    pthread_mutex_unlock(&fw_mtx);
}


int
fw_metrics_is_ready(void)
{
    int  ready;

    pthread_mutex_lock(&fw_mtx);
    ready = fw_ready;
    pthread_mutex_unlock(&fw_mtx);

    return ready;
}


void
fw_metrics_lag_clear(void)
{
    pthread_mutex_lock(&fw_mtx);
    fw_nlags = 0;
    pthread_mutex_unlock(&fw_mtx);
}


/*
 * Adds n to the counter `name{labels}`; name and help must be string
 * constants (they are kept by pointer).
 */

void
fw_metrics_count(const char *name, const char *help, const char *labels,
    double n)
{
    size_t  i;

    pthread_mutex_lock(&fw_mtx);

    for (i = 0; i < fw_ncounters; i++) {
        if (fw_counters[i].name == name
            && strcmp(fw_counters[i].labels, labels) == 0)
        {
            fw_counters[i].value += n;
            pthread_mutex_unlock(&fw_mtx);
            return;
        }
    }

    if (fw_ncounters < FW_COUNTERS) {
        fw_counters[fw_ncounters].name = name;
        fw_counters[fw_ncounters].help = help;
        snprintf(fw_counters[fw_ncounters].labels,
                 sizeof(fw_counters[0].labels), "%s", labels);
        fw_counters[fw_ncounters].value = n;
        fw_ncounters++;
    }

    pthread_mutex_unlock(&fw_mtx);
}


static void
fw_printf(fw_buf_t *b, const char *fmt, ...)
{
    int      n;
    char    *p;
    size_t   cap;
    va_list  ap;

    if (b->failed) {
        return;
    }

    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);

        if (n < 0) {
            b->failed = 1;
            return;
        }

        if ((size_t) n < b->cap - b->len) {
            b->len += n;
            return;
        }

        cap = b->cap * 2 + n;
        p = realloc(b->buf, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->buf = p;
        b->cap = cap;
    }
}


static void
fw_render_family(fw_buf_t *b, const char *name, const char *help,
    size_t field)
{
    size_t               i;
    fw_topic_metrics_t  *t;

    fw_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);

    for (i = 0; i < fw_ntopics; i++) {
        t = &fw_topics[i];
        fw_printf(b, "%s{topic=\"%s\"} %.0f\n", name, t->name,
                  *(double *) ((char *) t + field));
    }
}


char *
fw_metrics_render(size_t *len)
{
    size_t               i, j;
    fw_buf_t             b;
    const char          *last;
    fw_topic_metrics_t  *t;

    b.cap = 8192;
    b.len = 0;
    b.failed = 0;
    b.buf = malloc(b.cap);
    if (b.buf == NULL) {
        return NULL;
    }

    pthread_mutex_lock(&fw_mtx);

    fw_printf(&b, "# HELP feira_worker_ready 1 when the consumer has joined "
              "its group and holds its assignment, else 0.\n"
              "# TYPE feira_worker_ready gauge\nfeira_worker_ready %d\n",
              fw_ready);

    fw_printf(&b, "# HELP feira_worker_consumer_lag Messages of an assigned "
              "partition not yet processed (high watermark minus stored "
              "offset).\n# TYPE feira_worker_consumer_lag gauge\n");

    for (i = 0; i < fw_nlags; i++) {
        fw_printf(&b, "feira_worker_consumer_lag{topic=\"%s\","
                  "partition=\"%d\"} %lld\n", fw_lags[i].topic,
                  (int) fw_lags[i].partition, (long long) fw_lags[i].lag);
    }

    fw_render_family(&b, "feira_worker_events_processed_total",
                     "Events handled to completion (offset storable).",
                     offsetof(fw_topic_metrics_t, processed));
    fw_render_family(&b, "feira_worker_events_retried_total",
                     "Handling attempts that failed transiently and were "
                     "scheduled again.",
                     offsetof(fw_topic_metrics_t, retried));
    fw_render_family(&b, "feira_worker_events_dead_lettered_total",
                     "Events written to the dead letter topic.",
                     offsetof(fw_topic_metrics_t, dead));

    fw_printf(&b, "# HELP feira_worker_handler_seconds Time of one handling "
              "attempt of an event.\n"
              "# TYPE feira_worker_handler_seconds histogram\n");

    for (i = 0; i < fw_ntopics; i++) {
        t = &fw_topics[i];

        for (j = 0; j < FW_BUCKETS; j++) {
            fw_printf(&b, "feira_worker_handler_seconds_bucket{topic=\"%s\","
                      "le=\"%g\"} %.0f\n", t->name, fw_bounds[j],
                      t->buckets[j]);
        }

        fw_printf(&b, "feira_worker_handler_seconds_bucket{topic=\"%s\","
                  "le=\"+Inf\"} %.0f\n", t->name, t->count);
        fw_printf(&b, "feira_worker_handler_seconds_sum{topic=\"%s\"} %.6f\n",
                  t->name, t->sum);
        fw_printf(&b, "feira_worker_handler_seconds_count{topic=\"%s\"} "
                  "%.0f\n", t->name, t->count);
    }

    last = NULL;

    for (i = 0; i < fw_ncounters; i++) {
        if (fw_counters[i].name != last) {
            last = fw_counters[i].name;

            /* a family is printed once, with all its label sets */
            for (j = 0; j < i; j++) {
                if (fw_counters[j].name == last) {
                    break;
                }
            }

            if (j < i) {
                continue;
            }

            fw_printf(&b, "# HELP %s %s\n# TYPE %s counter\n", last,
                      fw_counters[i].help, last);

            for (j = i; j < fw_ncounters; j++) {
                if (fw_counters[j].name == last) {
                    fw_printf(&b, "%s{%s} %.0f\n", last,
                              fw_counters[j].labels, fw_counters[j].value);
                }
            }
        }
    }

    pthread_mutex_unlock(&fw_mtx);

    if (b.failed) {
        free(b.buf);
        return NULL;
    }

    *len = b.len;

    return b.buf;
}
