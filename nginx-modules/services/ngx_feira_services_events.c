/*
 * Events on feira.requests, keyed by request id, in the envelope of
 * docs/events.md, and on the real-time channel request:<id>.  They are
 * produced after MongoDB holds the change (and the event, in its claim);
 * once the broker has them all, the claim is marked published.
 */

#include "ngx_http_feira_services_module.h"


typedef struct {
    ngx_feira_svc_published_pt   handler;
    void                        *data;
    ngx_uint_t                   pending;
    ngx_uint_t                   failed;
    char                         claim[40];
} ngx_feira_svc_pub_t;


static void ngx_feira_svc_fan_out(ngx_feira_svc_job_t *job);
static void ngx_feira_svc_rt(const char *prefix, const char *id,
    const char *event);
static void ngx_feira_svc_delivered(void *data, rd_kafka_resp_err_t err);
static void ngx_feira_svc_mark_job(void *data);
static void ngx_feira_svc_mark_done(ngx_http_request_t *r, void *data);


/* the envelope, as a malloc()ed string; "data" is taken over */

char *
ngx_feira_svc_event(const char *type, const char *event_id, int64_t now,
    const char *actor_id, const char *actor_role, json_t *data)
{
    char    *text, when[32];
    json_t  *ev;

    if (data == NULL) {
        return NULL;
    }

    if (ngx_feira_format_rfc3339(now, when, sizeof(when)) == 0) {
        json_decref(data);
        return NULL;
    }

    ev = json_pack("{s:s, s:s, s:s, s:{s:s?, s:s}, s:o}",
                   "id", event_id,
                   "type", type,
                   "occurred_at", when,
                   "actor",
                       "id", (actor_id && actor_id[0]) ? actor_id : NULL,
                       "role", actor_role,
                   "data", data);
    if (ev == NULL) {
        return NULL;
    }

    text = json_dumps(ev, JSON_COMPACT|JSON_REAL_PRECISION(15));

    json_decref(ev);

    return text;
}


/*
 * Produces the job's events; the handler runs once every delivery report
 * is in (rc NGX_OK if all were delivered).  NGX_DECLINED: nothing to wait
 * for, the handler will not run (the relay publishes later).
 */

ngx_int_t
ngx_feira_svc_publish(ngx_feira_svc_job_t *job,
    ngx_feira_svc_published_pt handler, void *data)
{
    ngx_uint_t            i;
    ngx_feira_svc_pub_t  *pub;

    ngx_feira_svc_fan_out(job);

    if (job->nevents == 0 || !ngx_feira_kafka_configured()) {
        return NGX_DECLINED;
    }

    pub = ngx_alloc(sizeof(ngx_feira_svc_pub_t), ngx_cycle->log);
    if (pub == NULL) {
        return NGX_DECLINED;
    }

    pub->handler = handler;
    pub->data = data;
    pub->pending = 0;
    pub->failed = 0;
    ngx_cpystrn((u_char *) pub->claim, (u_char *) job->claim,
                sizeof(pub->claim));

    for (i = 0; i < job->nevents; i++) {
        if (ngx_feira_kafka_produce(NGX_FEIRA_SVC_TOPIC, job->key,
                                    ngx_strlen(job->key), job->events[i],
                                    ngx_strlen(job->events[i]),
                                    ngx_feira_svc_delivered, pub)
            == NGX_OK)
        {
            pub->pending++;

        } else {
            pub->failed = 1;
        }
    }

    if (pub->pending == 0) {
        ngx_free(pub);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The same events on the real-time channel request:<id> (fire and
 * forget: a client that missed one reads the request), and offers on
 * user:<provider id> of each provider offered the request.
 */

static void
ngx_feira_svc_fan_out(ngx_feira_svc_job_t *job)
{
    json_t      *ev, *ids, *id;
    size_t       k;
    ngx_uint_t   i;
    const char  *type;

    for (i = 0; i < job->nevents; i++) {
        ngx_feira_svc_rt("request:", job->key, job->events[i]);

        ev = json_loads(job->events[i], 0, NULL);
        if (ev == NULL) {
            continue;
        }

        type = json_string_value(json_object_get(ev, "type"));
        ids = json_object_get(json_object_get(ev, "data"), "provider_ids");

        if (type && ngx_strcmp(type, "request.offered") == 0
            && json_is_array(ids))
        {
            json_array_foreach(ids, k, id) {
                if (json_is_string(id)) {
                    ngx_feira_svc_rt("user:", json_string_value(id),
                                     job->events[i]);
                }
            }
        }

        json_decref(ev);
    }
}


static void
ngx_feira_svc_rt(const char *prefix, const char *id, const char *event)
{
    ngx_str_t  channel, text;
    u_char     buf[NGX_FEIRA_RT_CHANNEL_MAX + 1];

    channel.data = buf;
    channel.len = ngx_snprintf(buf, NGX_FEIRA_RT_CHANNEL_MAX, "%s%s",
                               prefix, id)
                  - buf;

    text.data = (u_char *) event;
    text.len = ngx_strlen(event);

    if (ngx_feira_rt_channel_valid(&channel)
        && ngx_feira_rt_publish(&channel, &text, NULL, NULL) == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: services: real-time publish on %V failed",
                      &channel);
    }
}


static void
ngx_feira_svc_delivered(void *data, rd_kafka_resp_err_t err)
{
    ngx_feira_svc_pub_t  *pub = data;

    char  *claim;

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pub->failed = 1;
    }

    if (--pub->pending) {
        return;
    }

    if (!pub->failed && pub->claim[0]) {
        claim = ngx_alloc(sizeof(pub->claim), ngx_cycle->log);

        if (claim) {
            ngx_memcpy(claim, pub->claim, sizeof(pub->claim));

            if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                            ngx_feira_svc_mark_job,
                                            ngx_feira_svc_mark_done, claim)
                != NGX_OK)
            {
                /* the relay publishes it again: consumers deduplicate */
                ngx_free(claim);
            }
        }
    }

    if (pub->failed) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: services: events of %s not delivered yet, "
                      "the relay retries", pub->claim);
    }

    if (pub->handler) {
        pub->handler(pub->data, pub->failed ? NGX_ERROR : NGX_OK);
    }

    ngx_free(pub);
}


/* a job: the claim's events are in the log */

static void
ngx_feira_svc_mark_job(void *data)
{
    char  *claim = data;

    bson_t               *filter, *update;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CLAIMS_COLL);

    filter = BCON_NEW("_id", BCON_UTF8(claim));
    update = BCON_NEW("$set", "{",
                          "published", BCON_BOOL(true),
                          "published_at",
                              BCON_DATE_TIME((int64_t) time(NULL) * 1000),
                      "}");

    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL,
                                      &error))
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: services: mark %s published: %s", claim,
                      error.message);
    }

    bson_destroy(filter);
    bson_destroy(update);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_mark_done(ngx_http_request_t *r, void *data)
{
    ngx_free(data);
}
