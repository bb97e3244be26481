/*
 * Who may listen: request:<id> is for the request's client and provider
 * (and the providers it is offered to, before it is accepted), read from
 * the `requests` collection in the thread pool.  And the tokens of open
 * connections: a timer closes those that expire or are revoked (logout),
 * and keeps connected providers seen for matching.
 */

#include "ngx_http_feira_realtime_module.h"


#define NGX_FEIRA_RT_SEEN_BATCH  256


typedef struct {
    ngx_feira_rt_sub_t          *sub;         /* NULL once cancelled */
    char                         request[25];
    char                         user[25];
    ngx_uint_t                   admin;

    ngx_uint_t                   kind;        /* 0: not a participant */
    ngx_uint_t                   failed;
} ngx_feira_rt_authz_t;


static void ngx_feira_rt_authz_job(void *data);
static void ngx_feira_rt_authz_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_feira_rt_bson_is(const bson_t *doc, const char *key,
    const char *hex);
static ngx_int_t ngx_feira_rt_bson_has(const bson_t *doc, const char *key,
    const char *hex);
static void ngx_feira_rt_sweep(ngx_event_t *ev);
static void ngx_feira_rt_presence(ngx_event_t *ev);


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_http_feira_realtime_main_conf_t  *ngx_feira_rt_rmcf;
static ngx_event_t                           ngx_feira_rt_sweep_ev;
static ngx_event_t                           ngx_feira_rt_presence_ev;


/* "request:<24 hex>" or "user:<24 hex>"; id is the hex part */

ngx_int_t
ngx_feira_rt_channel_parse(ngx_str_t *name, ngx_str_t *id, ngx_uint_t *user)
{
    size_t  prefix;

    if (name->len == 8 + 24
        && ngx_strncmp(name->data, "request:", 8) == 0)
    {
        prefix = 8;
        *user = 0;

    } else if (name->len == 5 + 24
               && ngx_strncmp(name->data, "user:", 5) == 0)
    {
        prefix = 5;
        *user = 1;

    } else {
        return NGX_ERROR;
    }

    id->data = name->data + prefix;
    id->len = 24;

    /* lower-case hex only: one spelling per channel */
    for (prefix = 0; prefix < 24; prefix++) {
        if (!((id->data[prefix] >= '0' && id->data[prefix] <= '9')
              || (id->data[prefix] >= 'a' && id->data[prefix] <= 'f')))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_feira_rt_authorize(ngx_feira_rt_sub_t *sub)
{
    ngx_str_t              id;
    ngx_uint_t             user;
    ngx_feira_ws_t        *ws;
    ngx_feira_rt_authz_t  *az;

    ws = sub->ws;

    if (ngx_feira_rt_channel_parse(&sub->name, &id, &user) != NGX_OK
        || user || ws->identity.id.len != 24)
    {
        return NGX_ERROR;
    }

    az = ngx_calloc(sizeof(ngx_feira_rt_authz_t), ws->connection->log);
    if (az == NULL) {
        return NGX_ERROR;
    }

    az->sub = sub;
    ngx_memcpy(az->request, id.data, 24);
    ngx_memcpy(az->user, ws->identity.id.data, 24);
    az->admin = (ws->identity.role.len == 5
                 && ngx_strncmp(ws->identity.role.data, "admin", 5) == 0);

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_rt_authz_job,
                                    ngx_feira_rt_authz_done, az)
        != NGX_OK)
    {
        ngx_free(az);
        return NGX_ERROR;
    }

    sub->job = &az->sub;

    return NGX_OK;
}


/* a job: runs in a pool thread */

static void
ngx_feira_rt_authz_job(void *data)
{
    ngx_feira_rt_authz_t  *az = data;

    bson_t                *filter, *opts;
    bson_oid_t             oid;
    bson_iter_t            it;
    const char            *status;
    const bson_t          *doc;
    bson_error_t           error;
    mongoc_cursor_t       *cursor;
    mongoc_client_t       *client;
    mongoc_collection_t   *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        az->failed = 1;
        return;
    }

    bson_oid_init_from_string(&oid, az->request);

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "requests");
    filter = BCON_NEW("_id", BCON_OID(&oid));
    opts = BCON_NEW("projection", "{",
                        "client_id", BCON_INT32(1),
                        "provider_id", BCON_INT32(1),
                        "offered_to", BCON_INT32(1),
                        "status", BCON_INT32(1),
                    "}",
                    "limit", BCON_INT64(1));

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    if (mongoc_cursor_next(cursor, &doc)) {
        status = NULL;

        if (bson_iter_init_find(&it, doc, "status")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            status = bson_iter_utf8(&it, NULL);
        }

        if (az->admin) {
            az->kind = NGX_FEIRA_RT_KIND_ADMIN;

        } else if (ngx_feira_rt_bson_is(doc, "client_id", az->user)) {
            az->kind = NGX_FEIRA_RT_KIND_CLIENT;

        } else if (ngx_feira_rt_bson_is(doc, "provider_id", az->user)) {
            az->kind = NGX_FEIRA_RT_KIND_PROVIDER;

        } else if (status
                   && (ngx_strcmp(status, "open") == 0
                       || ngx_strcmp(status, "offered") == 0)
                   && ngx_feira_rt_bson_has(doc, "offered_to", az->user))
        {
            az->kind = NGX_FEIRA_RT_KIND_OFFERED;
        }

    } else if (mongoc_cursor_error(cursor, &error)) {
        az->failed = 1;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_rt_authz_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_rt_authz_t  *az = data;

    ngx_uint_t           kind;
    ngx_feira_rt_sub_t  *sub;

    sub = az->sub;
    kind = az->failed ? (ngx_uint_t) -1 : az->kind;

    ngx_free(az);

    if (sub == NULL) {
        /* the subscription or its connection went away meanwhile */
        return;
    }

    sub->job = NULL;

    if (kind == (ngx_uint_t) -1) {
        if (sub->reauth) {
            /* the store is down: keep what was granted, ask again later */
            sub->reauth = 0;
            return;
        }

        ngx_feira_rt_sub_drop(sub, "unavailable");
        return;
    }

    if (kind == 0) {
        if (sub->reauth) {
            ngx_feira_rt_ws_error(sub->ws, "forbidden",
                                  "no longer a participant of this request",
                                  &sub->name);
            ngx_feira_rt_sub_drop(sub, NULL);
            return;
        }

        ngx_feira_rt_sub_drop(sub, "forbidden");
        return;
    }

    if (sub->reauth) {
        sub->reauth = 0;

        if (sub->chan && sub->kind == NGX_FEIRA_RT_KIND_OFFERED
            && kind != NGX_FEIRA_RT_KIND_OFFERED)
        {
            sub->chan->noffered--;
        }

        sub->kind = kind;
        return;
    }

    sub->kind = kind;

    if (ngx_feira_rt_hub_attach(sub) != NGX_OK) {
        ngx_feira_rt_sub_drop(sub, "unavailable");
    }
}


/* the field is this ObjectId (or its 24-hex string) */

static ngx_int_t
ngx_feira_rt_bson_is(const bson_t *doc, const char *key, const char *hex)
{
    char         buf[25];
    bson_iter_t  it;

    if (!bson_iter_init_find(&it, doc, key)) {
        return 0;
    }

    if (BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), buf);
        return ngx_strcmp(buf, hex) == 0;
    }

    if (BSON_ITER_HOLDS_UTF8(&it)) {
        return ngx_strcmp(bson_iter_utf8(&it, NULL), hex) == 0;
    }

    return 0;
}


/* the array field holds this ObjectId (or its 24-hex string) */

static ngx_int_t
ngx_feira_rt_bson_has(const bson_t *doc, const char *key, const char *hex)
{
    char         buf[25];
    bson_iter_t  it, child;

    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it)
        || !bson_iter_recurse(&it, &child))
    {
        return 0;
    }

    while (bson_iter_next(&child)) {
        if (BSON_ITER_HOLDS_OID(&child)) {
            bson_oid_to_string(bson_iter_oid(&child), buf);

            if (ngx_strcmp(buf, hex) == 0) {
                return 1;
            }

        } else if (BSON_ITER_HOLDS_UTF8(&child)
                   && ngx_strcmp(bson_iter_utf8(&child, NULL), hex) == 0)
        {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_feira_rt_access_init(ngx_cycle_t *cycle,
    ngx_http_feira_realtime_main_conf_t *rmcf)
{
    ngx_feira_rt_rmcf = rmcf;

    ngx_feira_rt_sweep_ev.handler = ngx_feira_rt_sweep;
    ngx_feira_rt_sweep_ev.log = cycle->log;
    ngx_feira_rt_sweep_ev.cancelable = 1;
    ngx_add_timer(&ngx_feira_rt_sweep_ev, rmcf->auth_check);

    ngx_feira_rt_presence_ev.handler = ngx_feira_rt_presence;
    ngx_feira_rt_presence_ev.log = cycle->log;
    ngx_feira_rt_presence_ev.cancelable = 1;
    ngx_add_timer(&ngx_feira_rt_presence_ev, rmcf->presence_interval);

    return NGX_OK;
}


void
ngx_feira_rt_access_exit(void)
{
    if (ngx_feira_rt_sweep_ev.timer_set) {
        ngx_del_timer(&ngx_feira_rt_sweep_ev);
    }

    if (ngx_feira_rt_presence_ev.timer_set) {
        ngx_del_timer(&ngx_feira_rt_presence_ev);
    }
}


/*
 * Every feira_realtime_auth_check: each open connection's token is looked
 * up in the deny list (shared memory, no round trip) and its expiry
 * checked.  A logout or a refresh-token reuse ends the connection with
 * 4003, an expired token with 4001.
 */

static void
ngx_feira_rt_sweep(ngx_event_t *ev)
{
    ngx_queue_t     *q, *list;
    ngx_feira_ws_t  *ws;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    list = ngx_feira_rt_ws_all();

    for (q = ngx_queue_head(list);
         q != ngx_queue_sentinel(list);
         q = ngx_queue_next(q))
    {
        ws = ngx_queue_data(q, ngx_feira_ws_t, queue);

        if (ws->close_sent || ws->aborted) {
            continue;
        }

        if (ngx_feira_auth_revoked(&ws->identity)) {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "feira: realtime: token revoked, closing");
            ngx_feira_rt_ws_close(ws, NGX_FEIRA_WS_CLOSE_REVOKED,
                                  "token revoked");
            continue;
        }

        if (ngx_feira_auth_expired(&ws->identity)) {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "feira: realtime: token expired, closing");
            ngx_feira_rt_ws_close(ws, NGX_FEIRA_WS_CLOSE_EXPIRED,
                                  "token expired");
        }
    }

    ngx_add_timer(ev, ngx_feira_rt_rmcf->auth_check);
}


/*
 * Connected providers stay "seen" in the presence set (matching), and
 * every connected user in feira:online (chat), in batches.
 */

static void
ngx_feira_rt_presence(ngx_event_t *ev)
{
    ngx_uint_t       n, m;
    ngx_queue_t     *q, *list;
    ngx_feira_ws_t  *ws;
    ngx_str_t        ids[NGX_FEIRA_RT_SEEN_BATCH];
    ngx_str_t        users[NGX_FEIRA_RT_SEEN_BATCH];

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    list = ngx_feira_rt_ws_all();
    n = 0;
    m = 0;

    for (q = ngx_queue_head(list);
         q != ngx_queue_sentinel(list);
         q = ngx_queue_next(q))
    {
        ws = ngx_queue_data(q, ngx_feira_ws_t, queue);

        if (ws->close_sent || ws->aborted) {
            continue;
        }

        users[m++] = ws->identity.id;

        if (m == NGX_FEIRA_RT_SEEN_BATCH) {
            (void) ngx_feira_presence_online(users, m);
            m = 0;
        }

        if (!ws->provider) {
            continue;
        }

        ids[n++] = ws->identity.id;

        if (n == NGX_FEIRA_RT_SEEN_BATCH) {
            (void) ngx_feira_presence_seen(ids, n);
            n = 0;
        }
    }

    (void) ngx_feira_presence_seen(ids, n);
    (void) ngx_feira_presence_online(users, m);

    ngx_add_timer(ev, ngx_feira_rt_rmcf->presence_interval);
}
