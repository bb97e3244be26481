/*
 * What a WebSocket client sends: JSON text messages, checked field by
 * field.  subscribe, unsubscribe and location are served here, other
 * types by the module that registered them (ngx_feira_wsmsg.c); a bad
 * message gets an error frame and the connection stays open.
 */

#include "ngx_http_feira_realtime_module.h"


static void ngx_feira_rt_subscribe(ngx_feira_ws_t *ws, json_t *msg);
static void ngx_feira_rt_unsubscribe(ngx_feira_ws_t *ws, json_t *msg);
static void ngx_feira_rt_location(ngx_feira_ws_t *ws, json_t *msg);
static void ngx_feira_rt_location_done(void *data, ngx_int_t rc);
static ngx_int_t ngx_feira_rt_channel_arg(ngx_feira_ws_t *ws, json_t *msg,
    ngx_str_t *name);
static ngx_feira_rt_sub_t *ngx_feira_rt_sub_find(ngx_feira_ws_t *ws,
    ngx_str_t *name);
static ngx_int_t ngx_feira_rt_number(json_t *msg, const char *key,
    double *value);


void
ngx_feira_rt_client_message(ngx_feira_ws_t *ws, u_char *data, size_t len)
{
    json_t        *msg, *type;
    const char    *t;
    json_error_t   err;

    msg = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES, &err);

    if (msg == NULL || !json_is_object(msg)) {
        json_decref(msg);
        ngx_feira_rt_ws_error(ws, "bad_message",
                              "a message is a JSON object", NULL);
        return;
    }

    type = json_object_get(msg, "type");
    t = json_string_value(type);

    if (t == NULL) {
        ngx_feira_rt_ws_error(ws, "bad_message",
                              "\"type\" must be a string", NULL);

    } else if (ngx_strcmp(t, "subscribe") == 0) {
        ngx_feira_rt_subscribe(ws, msg);

    } else if (ngx_strcmp(t, "unsubscribe") == 0) {
        ngx_feira_rt_unsubscribe(ws, msg);

    } else if (ngx_strcmp(t, "location") == 0) {
        ngx_feira_rt_location(ws, msg);

    } else if (ngx_feira_wsmsg_dispatch(&ws->peer, t, msg) == NGX_DECLINED) {
        /* chat, typing and read are feira_chat's, when it is loaded */
        ngx_feira_rt_ws_error(ws, "unknown_type",
                              "type is subscribe, unsubscribe, location, "
                              "or (with feira_chat) chat, typing, read",
                              NULL);
    }

    json_decref(msg);
}


static void
ngx_feira_rt_subscribe(ngx_feira_ws_t *ws, json_t *msg)
{
    json_t              *since;
    int64_t              last;
    ngx_str_t            name, id;
    ngx_uint_t           user;
    ngx_feira_rt_sub_t  *sub;

    if (ngx_feira_rt_channel_arg(ws, msg, &name) != NGX_OK) {
        return;
    }

    since = json_object_get(msg, "since");
    last = -1;

    if (since && !json_is_null(since)) {
        if (!json_is_integer(since) || json_integer_value(since) < 0) {
            ngx_feira_rt_ws_error(ws, "bad_message",
                                  "\"since\" must be an integer >= 0",
                                  &name);
            return;
        }

        last = (int64_t) json_integer_value(since);
    }

    if (ngx_feira_rt_sub_find(ws, &name)) {
        ngx_feira_rt_ws_error(ws, "already_subscribed",
                              "this connection is subscribed already",
                              &name);
        return;
    }

    if (ws->nsubs >= ws->conf->max_subscriptions) {
        ngx_feira_rt_ws_error(ws, "too_many_subscriptions",
                              "unsubscribe from a channel first", &name);
        return;
    }

    (void) ngx_feira_rt_channel_parse(&name, &id, &user);

    /* user:<id> is the user's own; nothing to ask the store */
    if (user && (id.len != ws->identity.id.len
                 || ngx_strncmp(id.data, ws->identity.id.data, id.len) != 0))
    {
        ngx_feira_rt_ws_error(ws, "forbidden",
                              "a user channel is its user's only", &name);
        return;
    }

    sub = ngx_calloc(sizeof(ngx_feira_rt_sub_t) + name.len,
                     ws->connection->log);
    if (sub == NULL) {
        ngx_feira_rt_ws_abort(ws);
        return;
    }

    sub->ws = ws;
    sub->name.data = (u_char *) (sub + 1);
    sub->name.len = name.len;
    ngx_memcpy(sub->name.data, name.data, name.len);
    sub->last = last;
    sub->seen = last;
    sub->state = NGX_FEIRA_RT_SUB_AUTHORIZING;

    ngx_queue_insert_tail(&ws->subs, &sub->in_ws);
    ws->nsubs++;

    if (user) {
        sub->kind = NGX_FEIRA_RT_KIND_SELF;

        if (ngx_feira_rt_hub_attach(sub) != NGX_OK) {
            ngx_feira_rt_sub_drop(sub, "unavailable");
        }

        return;
    }

    if (ngx_feira_rt_authorize(sub) != NGX_OK) {
        ngx_feira_rt_sub_drop(sub, "unavailable");
    }
}


static void
ngx_feira_rt_unsubscribe(ngx_feira_ws_t *ws, json_t *msg)
{
    json_t              *json;
    ngx_str_t            name;
    ngx_feira_rt_sub_t  *sub;

    if (ngx_feira_rt_channel_arg(ws, msg, &name) != NGX_OK) {
        return;
    }

    sub = ngx_feira_rt_sub_find(ws, &name);

    if (sub == NULL) {
        ngx_feira_rt_ws_error(ws, "not_subscribed",
                              "this connection is not subscribed", &name);
        return;
    }

    json = json_pack("{s:s, s:s%}", "type", "unsubscribed", "channel",
                     (char *) name.data, name.len);

    /* name points into the message, which outlives the subscription */
    ngx_feira_rt_sub_drop(sub, NULL);

    ngx_feira_rt_ws_send_json(ws, json);
}


/*
 * Ends a subscription: its pending job or replay is cancelled, it leaves
 * its channel.  With a reason, the client is told with an error frame.
 */

void
ngx_feira_rt_sub_drop(ngx_feira_rt_sub_t *sub, const char *reason)
{
    ngx_feira_ws_t  *ws;

    ws = sub->ws;

    if (reason) {
        ngx_feira_rt_ws_error(ws, reason,
                              ngx_strcmp(reason, "forbidden") == 0
                              ? "only the participants of a request may "
                                "subscribe to it"
                              : "the subscription could not be served, "
                                "try again",
                              &sub->name);
    }

    if (sub->job) {
        *sub->job = NULL;
        sub->job = NULL;
    }

    ngx_feira_rt_hub_cancel(sub);

    if (sub->chan) {
        ngx_feira_rt_hub_detach(sub);
    }

    ngx_queue_remove(&sub->in_ws);
    ws->nsubs--;

    ngx_free(sub);
}


void
ngx_feira_rt_unsubscribe_all(ngx_feira_ws_t *ws)
{
    ngx_queue_t         *q;
    ngx_feira_rt_sub_t  *sub;

    while (!ngx_queue_empty(&ws->subs)) {
        q = ngx_queue_head(&ws->subs);
        sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_ws);
        ngx_feira_rt_sub_drop(sub, NULL);
    }
}


static void
ngx_feira_rt_location(ngx_feira_ws_t *ws, json_t *msg)
{
    double     lat, lng;
    ngx_int_t  rc;

    if (!ws->provider) {
        ngx_feira_rt_ws_error(ws, "forbidden",
                              "only providers send their location", NULL);
        return;
    }

    if (ngx_feira_rt_number(msg, "lat", &lat) != NGX_OK
        || ngx_feira_rt_number(msg, "lng", &lng) != NGX_OK
        || !ngx_feira_rt_location_valid(lat, lng))
    {
        ngx_feira_rt_ws_error(ws, "bad_message",
                              "\"lat\" (-90..90) and \"lng\" (-180..180) "
                              "must be numbers", NULL);
        return;
    }

    if (ws->location) {
        ngx_feira_rt_ws_error(ws, "rate_limited",
                              "the previous location is still in flight",
                              NULL);
        return;
    }

    rc = ngx_feira_rt_location_submit(&ws->location, &ws->identity.id, lat,
                                      lng, 0, ngx_feira_rt_location_done,
                                      ws);
    if (rc != NGX_OK) {
        ws->location = NULL;
        ngx_feira_rt_ws_error(ws, "unavailable",
                              "the location could not be stored, try again",
                              NULL);
    }
}


static void
ngx_feira_rt_location_done(void *data, ngx_int_t rc)
{
    ngx_feira_ws_t  *ws = data;

    ws->location = NULL;

    if (rc == NGX_BUSY) {
        ngx_feira_rt_ws_error(ws, "rate_limited",
                              "locations come at most once per "
                              "feira_realtime_location_interval", NULL);

    } else if (rc != NGX_OK) {
        ngx_feira_rt_ws_error(ws, "unavailable",
                              "the location could not be stored, try again",
                              NULL);
    }
}


static ngx_int_t
ngx_feira_rt_channel_arg(ngx_feira_ws_t *ws, json_t *msg, ngx_str_t *name)
{
    json_t      *channel;
    ngx_str_t    id;
    ngx_uint_t   user;

    channel = json_object_get(msg, "channel");

    if (!json_is_string(channel)) {
        ngx_feira_rt_ws_error(ws, "bad_message",
                              "\"channel\" must be a string", NULL);
        return NGX_ERROR;
    }

    name->data = (u_char *) json_string_value(channel);
    name->len = json_string_length(channel);

    if (ngx_feira_rt_channel_parse(name, &id, &user) != NGX_OK) {
        ngx_feira_rt_ws_error(ws, "bad_channel",
                              "a channel is request:<id> or user:<id>",
                              NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_feira_rt_sub_t *
ngx_feira_rt_sub_find(ngx_feira_ws_t *ws, ngx_str_t *name)
{
    ngx_queue_t         *q;
    ngx_feira_rt_sub_t  *sub;

    for (q = ngx_queue_head(&ws->subs);
         q != ngx_queue_sentinel(&ws->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_ws);

        if (sub->name.len == name->len
            && ngx_strncmp(sub->name.data, name->data, name->len) == 0)
        {
            return sub;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_feira_rt_number(json_t *msg, const char *key, double *value)
{
    json_t  *v;

    v = json_object_get(msg, key);

    if (!json_is_number(v)) {
        return NGX_ERROR;
    }

    *value = json_number_value(v);

    return NGX_OK;
}
