/*
 * What the payment worker publishes: payment events on Kafka (idempotent
 * producer, acks=all, each message flushed before the worker goes on) and
 * on the realtime channels, by running feira's publish script with hiredis
 * (docs/events.md "Publish script"; the script text is generated at build
 * time from that page: pw_rt_publish.lua.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pw.h"
#include "../common/fw_log.h"


static const char  pw_rt_publish_lua[] =
#include "pw_rt_publish.lua.h"
    ;


static void pw_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);
static int pw_redis_connect(pw_ctx_t *c);


int
pw_publish_open(pw_ctx_t *c, const char *brokers)
{
    char              err[512];
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                          sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.idempotence", "true", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "client.id", "feira-payment-worker", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "message.timeout.ms", "10000", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        fw_log_error("kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, pw_delivered);

    c->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (c->producer == NULL) {
        fw_log_error("kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    return 0;
}


void
pw_publish_close(pw_ctx_t *c)
{
    if (c->producer) {
        rd_kafka_flush(c->producer, 5000);
        rd_kafka_destroy(c->producer);
    }

    if (c->redis) {
        redisFree(c->redis);
    }
}


int
pw_publish_kafka(pw_ctx_t *c, const char *topic, const char *key,
    const char *payload)
{
    rd_kafka_resp_err_t  err, result;

    result = RD_KAFKA_RESP_ERR__IN_PROGRESS;

    err = rd_kafka_producev(c->producer,
                            RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_KEY((void *) key, strlen(key)),
                            RD_KAFKA_V_VALUE((void *) payload,
                                             strlen(payload)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_OPAQUE(&result),
                            RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_warn("kafka: produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }

    while (result == RD_KAFKA_RESP_ERR__IN_PROGRESS) {
        rd_kafka_poll(c->producer, 100);
    }

    if (result != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fw_log_warn("kafka: %s: %s", topic, rd_kafka_err2str(result));
        return -1;
    }

    return 0;
}


static void
pw_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void) rk;
    (void) opaque;

    *(rd_kafka_resp_err_t *) m->_private = m->err;
}


/* EVAL <script> 2 seq hist pubsub event maxlen ttl (docs/events.md) */

int
pw_publish_rt(pw_ctx_t *c, const char *channel, const char *payload)
{
    int          i;
    char         seq[128], hist[128], pub[128], maxlen[24], ttl[24];
    redisReply  *reply;
    const char  *argv[9];
    size_t       argvlen[9];

    if (c->redis_addr == NULL) {
        return 0;
    }

    snprintf(seq, sizeof(seq), "feira:rt:seq:%s", channel);
    snprintf(hist, sizeof(hist), "feira:rt:h:%s", channel);
    snprintf(pub, sizeof(pub), "feira:rt:%s", channel);
    snprintf(maxlen, sizeof(maxlen), "%ld", c->rt_history_len);
    snprintf(ttl, sizeof(ttl), "%ld", c->rt_history_ttl);

    argv[0] = "EVAL";
    argv[1] = pw_rt_publish_lua;
    argv[2] = "2";
    argv[3] = seq;
    argv[4] = hist;
    argv[5] = pub;
    argv[6] = payload;
    argv[7] = maxlen;
    argv[8] = ttl;

    for (i = 0; i < 9; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    for (i = 0; i < 2; i++) {
        if (c->redis == NULL && pw_redis_connect(c) != 0) {
            return -1;
        }

        reply = redisCommandArgv(c->redis, 9, argv, argvlen);

        if (reply != NULL) {
            break;
        }

        /* the connection broke: once more on a new one */
        redisFree(c->redis);
        c->redis = NULL;
    }

    if (reply == NULL) {
        fw_log_warn("redis: publish on %s failed", channel);
        return -1;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        fw_log_warn("redis: publish on %s: %s", channel, reply->str);
        freeReplyObject(reply);
        return -1;
    }

    freeReplyObject(reply);

    return 0;
}


static int
pw_redis_connect(pw_ctx_t *c)
{
    int             port;
    char            host[256];
    const char     *colon;
    struct timeval  tv;

    colon = strrchr(c->redis_addr, ':');

    if (colon == NULL || (size_t) (colon - c->redis_addr) >= sizeof(host)) {
        fw_log_error("redis: FEIRA_REDIS must be host:port");
        return -1;
    }

    memcpy(host, c->redis_addr, colon - c->redis_addr);
    host[colon - c->redis_addr] = '\0';
    port = atoi(colon + 1);

    tv.tv_sec = 5;
    tv.tv_usec = 0;

    c->redis = redisConnectWithTimeout(host, port, tv);

    if (c->redis == NULL || c->redis->err) {
        fw_log_warn("redis: %s", c->redis ? c->redis->errstr : "no memory");
        if (c->redis) {
            redisFree(c->redis);
            c->redis = NULL;
        }
        return -1;
    }

    redisSetTimeout(c->redis, tv);

    return 0;
}


/* the first 24 hex digits of SHA-256(seed), as feira_payments does */

void
pw_event_id(const char *seed, char *hex)
{
    int            i;
    unsigned int   len;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (!EVP_Digest(seed, strlen(seed), md, &len, EVP_sha256(), NULL)) {
        memset(md, 0, 12);
    }

    for (i = 0; i < 12; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}
