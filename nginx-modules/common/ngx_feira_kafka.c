/*
 * Kafka: one idempotent producer (acks=all) per nginx worker.
 *
 * rd_kafka_producev() only queues.  Delivery reports and librdkafka's log
 * lines are served on the event loop: librdkafka writes a byte to a pipe
 * when its main queue becomes non-empty (rd_kafka_queue_io_event_enable),
 * and a timer polls as well, as a safety net.  What Kafka does not take
 * goes to the outbox (ngx_feira_outbox.c) and is produced again later.
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_KAFKA_POLL_INTERVAL  500
#define NGX_FEIRA_KAFKA_FLUSH_TIMEOUT  5000


typedef struct {
    ngx_feira_kafka_dr_pt   handler;
    void                   *data;
    ngx_uint_t              stored;   /* its outbox record is oid */
    bson_oid_t              oid;
} ngx_feira_kafka_opaque_t;


static ngx_int_t ngx_feira_kafka_send(const char *topic, const char *key,
    size_t key_len, const void *payload, size_t len,
    ngx_feira_kafka_opaque_t *op);
static void ngx_feira_kafka_dr(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static void ngx_feira_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void ngx_feira_kafka_poll(void);
static void ngx_feira_kafka_timer_handler(ngx_event_t *ev);
static void ngx_feira_kafka_pipe_handler(ngx_event_t *ev);
static ngx_int_t ngx_feira_kafka_conf_set(rd_kafka_conf_t *conf,
    ngx_log_t *log, const char *name, const char *value);


/* per-worker state: set up in init_process, torn down in exit_process */
static rd_kafka_t        *ngx_feira_kafka_rk;
static ngx_connection_t  *ngx_feira_kafka_pipe_conn;
static int                ngx_feira_kafka_pipe_w = -1;
static ngx_event_t        ngx_feira_kafka_timer;
static ngx_log_t         *ngx_feira_kafka_logp;
static ngx_uint_t         ngx_feira_kafka_closing;


ngx_int_t
ngx_feira_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf)
{
    int                fds[2];
    char               errstr[512], value[64], *brokers;
    rd_kafka_conf_t   *conf;
    rd_kafka_queue_t  *mainq;
    ngx_connection_t  *c;

    if (fmcf->kafka_brokers.len == 0) {
        return NGX_OK;
    }

    ngx_feira_kafka_logp = cycle->log;
    ngx_feira_kafka_closing = 0;

    brokers = ngx_pnalloc(cycle->pool, fmcf->kafka_brokers.len + 1);
    if (brokers == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) brokers, fmcf->kafka_brokers.data,
                fmcf->kafka_brokers.len + 1);

    conf = rd_kafka_conf_new();

    ngx_snprintf((u_char *) value, sizeof(value), "%M%Z",
                 fmcf->kafka_timeout);

    if (ngx_feira_kafka_conf_set(conf, cycle->log, "bootstrap.servers",
                                 brokers) != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "enable.idempotence",
                                    "true") != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "acks", "all")
           != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "linger.ms", "2")
           != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "message.timeout.ms",
                                    value) != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "client.id",
                                    "feira-nginx") != NGX_OK
        || ngx_feira_kafka_conf_set(conf, cycle->log, "log.queue", "true")
           != NGX_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NGX_ERROR;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, ngx_feira_kafka_dr);
    rd_kafka_conf_set_log_cb(conf, ngx_feira_kafka_log);

    ngx_feira_kafka_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                      sizeof(errstr));
    if (ngx_feira_kafka_rk == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "feira: rd_kafka_new() failed: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NGX_ERROR;
    }

    /* librdkafka's log lines are served by rd_kafka_poll(), on our loop */
    mainq = rd_kafka_queue_get_main(ngx_feira_kafka_rk);
    rd_kafka_set_log_queue(ngx_feira_kafka_rk, mainq);

    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "feira: kafka: pipe2() failed");
        rd_kafka_queue_destroy(mainq);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        close(fds[0]);
        close(fds[1]);
        rd_kafka_queue_destroy(mainq);
        return NGX_ERROR;
    }

    c->read->handler = ngx_feira_kafka_pipe_handler;
    c->read->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        close(fds[0]);
        close(fds[1]);
        rd_kafka_queue_destroy(mainq);
        return NGX_ERROR;
    }

    ngx_feira_kafka_pipe_conn = c;
    ngx_feira_kafka_pipe_w = fds[1];

    rd_kafka_queue_io_event_enable(mainq, fds[1], "k", 1);
    rd_kafka_queue_destroy(mainq);

    ngx_feira_kafka_timer.handler = ngx_feira_kafka_timer_handler;
    ngx_feira_kafka_timer.log = cycle->log;
    ngx_feira_kafka_timer.data = NULL;
    ngx_feira_kafka_timer.cancelable = 1;

    ngx_add_timer(&ngx_feira_kafka_timer, NGX_FEIRA_KAFKA_POLL_INTERVAL);

    return ngx_feira_outbox_init_process(cycle, fmcf->kafka_outbox_interval,
                                         fmcf->kafka_timeout);
}


void
ngx_feira_kafka_exit_process(ngx_cycle_t *cycle)
{
    int                len;
    rd_kafka_queue_t  *mainq;

    if (ngx_feira_kafka_rk == NULL) {
        return;
    }

    /* the requests that waited for reports are gone: reports are dropped */
    ngx_feira_kafka_closing = 1;

    if (ngx_feira_kafka_timer.timer_set) {
        ngx_del_timer(&ngx_feira_kafka_timer);
    }

    ngx_feira_outbox_exit_process();

    mainq = rd_kafka_queue_get_main(ngx_feira_kafka_rk);
    rd_kafka_queue_io_event_enable(mainq, -1, NULL, 0);
    rd_kafka_queue_destroy(mainq);

    if (rd_kafka_flush(ngx_feira_kafka_rk, NGX_FEIRA_KAFKA_FLUSH_TIMEOUT)
        != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        len = rd_kafka_outq_len(ngx_feira_kafka_rk);
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "feira: kafka: %d messages not delivered at exit, "
                      "kept in the outbox", len);

        /* their reports, with a purge error, store them (closing) */
        rd_kafka_purge(ngx_feira_kafka_rk, RD_KAFKA_PURGE_F_QUEUE
                                           | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(ngx_feira_kafka_rk, 0);
    }

    rd_kafka_destroy(ngx_feira_kafka_rk);
    ngx_feira_kafka_rk = NULL;

    if (ngx_feira_kafka_pipe_conn) {
        ngx_close_connection(ngx_feira_kafka_pipe_conn);
        ngx_feira_kafka_pipe_conn = NULL;
    }

    if (ngx_feira_kafka_pipe_w != -1) {
        close(ngx_feira_kafka_pipe_w);
        ngx_feira_kafka_pipe_w = -1;
    }
}


ngx_int_t
ngx_feira_kafka_configured(void)
{
    return ngx_feira_kafka_rk != NULL;
}


ngx_int_t
ngx_feira_kafka_produce(const char *topic, const char *key, size_t key_len,
    const void *payload, size_t len, ngx_feira_kafka_dr_pt handler,
    void *data)
{
    ngx_int_t                  rc;
    ngx_feira_kafka_opaque_t  *op;

    if (ngx_feira_kafka_rk == NULL) {
        return NGX_DECLINED;
    }

    op = NULL;

    if (handler) {
        /* freed by the delivery report, which always comes */
        op = ngx_calloc(sizeof(ngx_feira_kafka_opaque_t), ngx_cycle->log);
        if (op == NULL) {
            return NGX_ERROR;
        }

        op->handler = handler;
        op->data = data;
    }

    rc = ngx_feira_kafka_send(topic, key, key_len, payload, len, op);

    if (rc != NGX_OK) {
        ngx_free(op);

        /* not queued, but not lost: the sweep produces it later */
        ngx_feira_outbox_save(topic, key, key_len, payload, len,
                              "refused by the producer", 0);
    }

    return rc;
}


/*
 * A message whose outbox record OID is stored already: delivered, the
 * record is removed; refused, the record stays for the sweep.
 */

ngx_int_t
ngx_feira_kafka_produce_stored(const char *topic, const char *key,
    size_t key_len, const void *payload, size_t len, bson_oid_t *oid)
{
    ngx_int_t                  rc;
    ngx_feira_kafka_opaque_t  *op;

    if (ngx_feira_kafka_rk == NULL) {
        return NGX_DECLINED;
    }

    op = ngx_calloc(sizeof(ngx_feira_kafka_opaque_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->stored = 1;
    bson_oid_copy(oid, &op->oid);

    rc = ngx_feira_kafka_send(topic, key, key_len, payload, len, op);

    if (rc != NGX_OK) {
        ngx_free(op);
    }

    return rc;
}


static ngx_int_t
ngx_feira_kafka_send(const char *topic, const char *key, size_t key_len,
    const void *payload, size_t len, ngx_feira_kafka_opaque_t *op)
{
    rd_kafka_resp_err_t  err;

    err = rd_kafka_producev(ngx_feira_kafka_rk,
                            RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_KEY((void *) key, key_len),
                            RD_KAFKA_V_VALUE((void *) payload, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_OPAQUE(op),
                            RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: kafka: produce to \"%s\" failed: %s",
                      topic, rd_kafka_err2str(err));
        ngx_feira_stats_add(kafka_produce_failures, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a job: runs in a pool thread */

ngx_int_t
ngx_feira_kafka_ping(char *err, size_t len, int timeout_ms)
{
    rd_kafka_resp_err_t         rc;
    const rd_kafka_metadata_t  *md;

    if (ngx_feira_kafka_rk == NULL) {
        snprintf(err, len, "not configured");
        return NGX_ERROR;
    }

    rc = rd_kafka_metadata(ngx_feira_kafka_rk, 0, NULL, &md, timeout_ms);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, len, "%s", rd_kafka_err2str(rc));
        return NGX_ERROR;
    }

    rd_kafka_metadata_destroy(md);

    return NGX_OK;
}


static void
ngx_feira_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    ngx_feira_kafka_opaque_t  *op = msg->_private;

    if (msg->err) {
        ngx_feira_stats_add(kafka_delivery_failures, 1);
        ngx_log_error(NGX_LOG_ERR, ngx_feira_kafka_logp, 0,
                      "feira: kafka: delivery to \"%s\" failed: %s",
                      rd_kafka_topic_name(msg->rkt),
                      rd_kafka_err2str(msg->err));

        ngx_feira_outbox_save(rd_kafka_topic_name(msg->rkt), msg->key,
                              msg->key_len, msg->payload, msg->len,
                              rd_kafka_err2str(msg->err),
                              ngx_feira_kafka_closing);

        /* a stored one: its record, due later, gives way to this one */
        if (op && op->stored) {
            ngx_feira_outbox_forget(&op->oid, ngx_feira_kafka_closing);
        }

    } else if (op && op->stored) {
        /* delivered: its record goes */
        ngx_feira_outbox_forget(&op->oid, ngx_feira_kafka_closing);
    }

    if (op == NULL) {
        return;
    }

    if (op->handler && !ngx_feira_kafka_closing) {
        op->handler(op->data, msg->err);
    }

    ngx_free(op);
}


static void
ngx_feira_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t  nlevel;

    nlevel = level <= 3 ? NGX_LOG_ERR : (level <= 5 ? NGX_LOG_WARN
                                                    : NGX_LOG_INFO);

    ngx_log_error(nlevel, ngx_feira_kafka_logp, 0,
                  "feira: librdkafka: %s: %s", fac, buf);
}


static void
ngx_feira_kafka_poll(void)
{
    if (ngx_feira_kafka_rk) {
        rd_kafka_poll(ngx_feira_kafka_rk, 0);
        ngx_feira_stats_set(kafka_queue,
                            rd_kafka_outq_len(ngx_feira_kafka_rk));
    }
}


static void
ngx_feira_kafka_pipe_handler(ngx_event_t *ev)
{
    u_char             buf[64];
    ngx_connection_t  *c = ev->data;

    while (read(c->fd, buf, sizeof(buf)) > 0) {
        /* void */
    }

    ngx_feira_kafka_poll();
}


static void
ngx_feira_kafka_timer_handler(ngx_event_t *ev)
{
    ngx_feira_kafka_poll();

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_FEIRA_KAFKA_POLL_INTERVAL);
}


static ngx_int_t
ngx_feira_kafka_conf_set(rd_kafka_conf_t *conf, ngx_log_t *log,
    const char *name, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "feira: kafka: %s: %s", name, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}
