/*
 * feira_chat: what happens after the store.  A new message goes live on
 * the request's channel and to Kafka (feira.chat) with recipient_online,
 * read from feira:online (kept by feira_realtime), so that the
 * notification worker tells a recipient who is not connected.  Typing is
 * never stored: a Redis key with a TTL limits it per user and request.
 */

#include "ngx_http_feira_chat_module.h"


static void ngx_feira_chat_online(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_chat_message_out(ngx_feira_chat_op_t *op);
static json_t *ngx_feira_chat_event(ngx_feira_chat_op_t *op,
    const char *id, const char *type, json_t *data);
static void ngx_feira_chat_typing_claimed(redisAsyncContext *ac,
    void *reply, void *privdata);


/*
 * On the event loop after the job: NGX_FEIRA_CHAT_SEND goes on to the
 * presence check; the others publish what changed.  op->finish runs once.
 */

void
ngx_feira_chat_deliver(ngx_feira_chat_op_t *op)
{
    json_t     *data;
    ngx_int_t   rc;

    if (op->status >= NGX_HTTP_BAD_REQUEST) {
        op->finish(op);
        return;
    }

    switch (op->what) {

    case NGX_FEIRA_CHAT_SEND:
        /* a retry is answered, not delivered again */
        if (op->replayed) {
            break;
        }

        rc = ngx_feira_redis_command(ngx_feira_redis_main(),
                                     ngx_feira_chat_online, op,
                                     "ZSCORE %s %s",
                                     NGX_FEIRA_PRESENCE_ONLINE, op->peer_id);
        if (rc == NGX_OK) {
            return;
        }

        /* Redis is down: nobody gets it live; the notification says it */
        op->online = 0;
        ngx_feira_chat_message_out(op);
        break;

    case NGX_FEIRA_CHAT_READ:
        if (!op->changed) {
            break;
        }

        data = json_pack("{s:s, s:s, s:s, s:s, s:s}",
                         "request_id", op->request_id,
                         "client_id", op->client_id,
                         "provider_id", op->provider_id,
                         "reader_id", op->user,
                         "up_to", op->up_to);
        ngx_feira_chat_publish(op, "chat.read", data);
        break;

    case NGX_FEIRA_CHAT_TYPING:
        data = json_pack("{s:s, s:s, s:s, s:s, s:s}",
                         "request_id", op->request_id,
                         "client_id", op->client_id,
                         "provider_id", op->provider_id,
                         "from", op->user,
                         "to", op->peer_id);
        ngx_feira_chat_publish(op, "chat.typing", data);
        break;

    default:
        break;
    }

    op->finish(op);
}


static void
ngx_feira_chat_online(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply           *rr = reply;
    ngx_feira_chat_op_t  *op = privdata;

    double                            seen;
    ngx_http_feira_chat_main_conf_t  *cmcf;

    cmcf = ngx_feira_chat_conf();
    op->online = 0;

    if (rr && rr->type == REDIS_REPLY_STRING) {
        seen = strtod(rr->str, NULL);

        op->online = seen
                     >= (double) (ngx_feira_now_ms()
                                  - (int64_t) cmcf->online_window);
    }

    ngx_feira_chat_message_out(op);
    op->finish(op);
}


/* the same envelope live and on Kafka (docs/events.md, feira.chat) */

static void
ngx_feira_chat_message_out(ngx_feira_chat_op_t *op)
{
    char        *payload;
    json_t      *data, *event;
    ngx_int_t    rc;
    ngx_str_t    channel, ev;
    ngx_uint_t   level;
    const char  *id;
    u_char       buf[NGX_FEIRA_RT_CHANNEL_MAX];

    id = json_string_value(json_object_get(op->result, "id"));

    data = json_pack("{s:s, s:O, s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:b}",
                     "request_id", op->request_id,
                     "message_id", json_object_get(op->result, "id"),
                     "client_id", op->client_id,
                     "provider_id", op->provider_id,
                     "from", op->user,
                     "to", op->peer_id,
                     "text", json_object_get(op->result, "text"),
                     "client_msg_id",
                         json_object_get(op->result, "client_msg_id"),
                     "created_at", json_object_get(op->result, "created_at"),
                     "recipient_online", (int) op->online);

    event = ngx_feira_chat_event(op, id, "chat.message", data);
    if (event == NULL) {
        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "feira: chat: chat.message of %s not built", id);
        return;
    }

    payload = json_dumps(event, JSON_COMPACT);
    json_decref(event);

    if (payload == NULL) {
        return;
    }

    channel.data = buf;
    channel.len = ngx_sprintf(buf, "request:%s", op->request_id) - buf;
    ev.data = (u_char *) payload;
    ev.len = ngx_strlen(payload);

    if (ngx_feira_rt_publish(&channel, &ev, NULL, NULL) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "feira: chat: message %s stored, not delivered "
                      "live: Redis is down", id);
    }

    rc = ngx_feira_kafka_produce((char *) ngx_feira_chat_conf()->topic.data,
                                 op->request_id, 24, payload,
                                 ngx_strlen(payload), NULL, NULL);

    if (rc != NGX_OK) {
        level = (rc == NGX_DECLINED) ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, op->log, 0,
                      "feira: chat: chat.message %s not published%s", id,
                      rc == NGX_DECLINED ? ": no feira_kafka_brokers" : "");
    }

    free(payload);
}


/* a live-only event on the request's channel; takes data */

void
ngx_feira_chat_publish(ngx_feira_chat_op_t *op, const char *type,
    json_t *data)
{
    char        *payload;
    json_t      *event;
    ngx_str_t    channel, ev;
    bson_oid_t   oid;
    char         id[25];
    u_char       buf[NGX_FEIRA_RT_CHANNEL_MAX];

    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, id);

    event = ngx_feira_chat_event(op, id, type, data);
    payload = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);

    if (payload == NULL) {
        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "feira: chat: %s not built", type);
        return;
    }

    channel.data = buf;
    channel.len = ngx_sprintf(buf, "request:%s", op->request_id) - buf;
    ev.data = (u_char *) payload;
    ev.len = ngx_strlen(payload);

    if (ngx_feira_rt_publish(&channel, &ev, NULL, NULL) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "feira: chat: %s not delivered: Redis is down", type);
    }

    free(payload);
}


static json_t *
ngx_feira_chat_event(ngx_feira_chat_op_t *op, const char *id,
    const char *type, json_t *data)
{
    char  at[32];

    if (data == NULL || id == NULL) {
        json_decref(data);
        return NULL;
    }

    ngx_feira_rfc3339(ngx_feira_now_ms(), at, sizeof(at));

    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o}",
                     "id", id, "type", type, "occurred_at", at,
                     "actor", "id", op->user, "role", op->role,
                     "data", data);
}


/*
 * Typing: at most one per feira_chat_typing_interval for a user and a
 * request, across workers and instances (SET NX PX).  NGX_OK: op->finish
 * or the job follows; NGX_DECLINED: Redis is down.
 */

ngx_int_t
ngx_feira_chat_typing_claim(ngx_feira_chat_op_t *op)
{
    ngx_http_feira_chat_main_conf_t  *cmcf;

    cmcf = ngx_feira_chat_conf();

    return ngx_feira_redis_command(ngx_feira_redis_main(),
                                   ngx_feira_chat_typing_claimed, op,
                                   "SET " NGX_FEIRA_CHAT_TYPING_PREFIX
                                   "%s:%s 1 PX %lu NX",
                                   op->user, op->request_id,
                                   (unsigned long) cmcf->typing_interval);
}


static void
ngx_feira_chat_typing_claimed(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply           *rr = reply;
    ngx_feira_chat_op_t  *op = privdata;

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        op->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        op->finish(op);
        return;
    }

    if (rr->type == REDIS_REPLY_NIL) {
        op->status = NGX_HTTP_TOO_MANY_REQUESTS;
        op->detail = "typing comes at most once per "
                     "feira_chat_typing_interval";
        op->finish(op);
        return;
    }

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_chat_job,
                                    ngx_feira_chat_ws_done, op)
        != NGX_OK)
    {
        op->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        op->finish(op);
    }
}
