/*
 * The consumer framework of the workers: a librdkafka consumer group with
 * at-least-once offsets, asynchronous handlers, retries with backoff, a
 * dead letter topic, metrics and a clean shutdown.
 *
 * A handler gets batches of events and finishes each one, in any order,
 * with fw_event_done().  The offset of a partition is stored (and then
 * committed) only up to the first event not yet finished.
 */

#ifndef FW_WORKER_H
#define FW_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

typedef enum {
    FW_OK = 0,      /* done: store the offset */
    FW_RETRY,       /* transient failure: again after a backoff */
    FW_FAIL         /* permanent failure: to the dead letter topic */
} fw_result_e;

typedef struct fw_worker_s  fw_worker_t;
typedef struct fw_part_s    fw_part_t;
typedef struct fw_event_s   fw_event_t;

struct fw_event_s {
    rd_kafka_message_t  *msg;
    const char          *topic;
    fw_worker_t         *worker;
    fw_part_t           *part;
    unsigned             gen;
    unsigned             attempts;   /* attempts started */
    int                  state;
    int64_t              started;    /* of the current attempt, monotonic ms */
    int64_t              due;        /* of the next attempt */
    char                 error[512];
    fw_event_t          *next;
    void                *data;       /* the handler's */
};

typedef struct {
    /* start handling n events; each ends with fw_event_done() */
    void  (*handle)(void *ctx, fw_event_t **evs, size_t n);
    /* drive the handler's I/O for at most timeout_ms */
    void  (*poll)(void *ctx, int timeout_ms);
    /* called on every turn of the loop, for timers of the handler */
    void  (*tick)(void *ctx, int stopping);
    /* work of the handler not tied to events, still running */
    size_t  (*busy)(void *ctx);
} fw_handler_t;

typedef struct {
    const char   *name;
    const char   *brokers;
    const char   *group;
    const char   *group_instance_id;
    char        **topics;
    size_t        ntopics;
    const char   *dlq_topic;         /* NULL: "<source topic>.dlq" */
    unsigned      max_attempts;
    int64_t       backoff_base_ms;
    int64_t       backoff_max_ms;
    size_t        batch;
    size_t        max_inflight;
    int           session_timeout_ms;
    int           stats_interval_ms;
    int           drain_timeout_ms;
} fw_worker_conf_t;

typedef void (*fw_dlq_cb)(void *arg, int ok);

void fw_worker_conf_env(fw_worker_conf_t *conf, const char *name,
    const char *group, const char *topics);
fw_worker_t *fw_worker_new(fw_worker_conf_t *conf, fw_handler_t *h,
    void *ctx);
int fw_worker_run(fw_worker_t *w);
void fw_worker_free(fw_worker_t *w);
void fw_event_done(fw_event_t *ev, fw_result_e rc, const char *error);
int fw_worker_dead_letter(fw_worker_t *w, const char *topic,
    const char *key, size_t klen, const char *value, size_t vlen,
    const char *error, unsigned attempts, fw_dlq_cb cb, void *arg);
int fw_worker_stopping(fw_worker_t *w);
uint32_t fw_random(void);
void fw_signals_init(void);
int fw_signalled(void);
int64_t fw_now_ms(void);
int64_t fw_wall_ms(void);

#endif /* FW_WORKER_H */
