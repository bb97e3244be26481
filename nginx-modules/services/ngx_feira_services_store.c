/*
 * Service requests in MongoDB: creation, reads, and the transitions of the
 * lifecycle table, each committed by a unique claim "<id>:<from>" in
 * request_transitions, which also holds its event until it is published
 * (docs/lifecycle.md).  Every function here runs in a pool thread.
 */

#include "ngx_http_feira_services_module.h"


static json_t *ngx_feira_svc_request_view(const bson_t *doc,
    ngx_uint_t full);
static json_t *ngx_feira_svc_request_item(const bson_t *doc, void *data);
static bson_t *ngx_feira_svc_request_find(ngx_feira_svc_job_t *job,
    mongoc_client_t *client, bson_oid_t *oid);
static ngx_int_t ngx_feira_svc_accept_offering(ngx_feira_svc_job_t *job,
    mongoc_client_t *client, const bson_t *request, bson_t *set);
static json_t *ngx_feira_svc_transition_data(const bson_t *doc,
    const ngx_feira_transition_t *t, const char *provider,
    const bson_t *set);
static ngx_int_t ngx_feira_svc_claim(ngx_feira_svc_job_t *job,
    mongoc_collection_t *claims, bson_t *claim);
static void ngx_feira_svc_append_money(bson_t *doc, const char *key,
    json_t *money);
static json_t *ngx_feira_svc_money_json(const bson_t *doc, const char *key);
static char *ngx_feira_svc_new_event(ngx_feira_svc_job_t *job,
    const char *type, json_t *data);
static ngx_int_t ngx_feira_svc_index(mongoc_client_t *client,
    const char *coll, const char *name, bson_t *key, ngx_uint_t unique);
static void ngx_feira_svc_relay(ngx_feira_svc_job_t *job,
    mongoc_client_t *client, mongoc_collection_t *requests,
    mongoc_collection_t *claims, const bson_t *claim);


/* set once a worker has created the indexes (idempotent anyway) */
static volatile int  ngx_feira_svc_indexed;


ngx_int_t
ngx_feira_svc_indexes(mongoc_client_t *client)
{
    if (ngx_feira_svc_indexed) {
        return NGX_OK;
    }

    /* the unique one decides "one offering per category" */

    if (ngx_feira_svc_index(client, NGX_FEIRA_SVC_OFFERINGS_COLL,
                            "provider_category",
                            BCON_NEW("provider_id", BCON_INT32(1),
                                     "category", BCON_INT32(1)), 1)
        != NGX_OK
        || ngx_feira_svc_index(client, NGX_FEIRA_SVC_OFFERINGS_COLL,
                               "category",
                               BCON_NEW("category", BCON_INT32(1)), 0)
           != NGX_OK
        || ngx_feira_svc_index(client, NGX_FEIRA_SVC_REQUESTS_COLL, "client",
                               BCON_NEW("client_id", BCON_INT32(1),
                                        "_id", BCON_INT32(-1)), 0)
           != NGX_OK
        || ngx_feira_svc_index(client, NGX_FEIRA_SVC_REQUESTS_COLL,
                               "provider",
                               BCON_NEW("provider_id", BCON_INT32(1),
                                        "_id", BCON_INT32(-1)), 0)
           != NGX_OK
        || ngx_feira_svc_index(client, NGX_FEIRA_SVC_REQUESTS_COLL,
                               "status_expires",
                               BCON_NEW("status", BCON_INT32(1),
                                        "expires_at", BCON_INT32(1)), 0)
           != NGX_OK
        || ngx_feira_svc_index(client, NGX_FEIRA_SVC_CLAIMS_COLL,
                               "unpublished",
                               BCON_NEW("published", BCON_INT32(1),
                                        "at", BCON_INT32(1)), 0)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_feira_svc_indexed = 1;

    return NGX_OK;
}


/*
 * One index per command: FerretDB v1 fails a createIndexes that names
 * several indexes which all exist already.  The key is destroyed here.
 */

static ngx_int_t
ngx_feira_svc_index(mongoc_client_t *client, const char *coll,
    const char *name, bson_t *key, ngx_uint_t unique)
{
    bool           ok;
    bson_t        *cmd, list, index;
    bson_error_t   error;

    cmd = BCON_NEW("createIndexes", BCON_UTF8(coll));

    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &list);
    BSON_APPEND_DOCUMENT_BEGIN(&list, "0", &index);
    BSON_APPEND_DOCUMENT(&index, "key", key);
    BSON_APPEND_UTF8(&index, "name", name);

    if (unique) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }

    bson_append_document_end(&list, &index);
    bson_append_array_end(cmd, &list);

    ok = mongoc_client_command_simple(client, ngx_feira_mongo_db(), cmd, NULL,
                                      NULL, &error);
    bson_destroy(cmd);
    bson_destroy(key);

    if (!ok) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: services: createIndexes %s.%s: %s", coll, name,
                      error.message);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_feira_svc_request_create_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    json_t               *body, *loc, *ev, *ids, *v;
    bson_t               *doc, *filter, *category, claim, events, list, sub;
    bson_oid_t            rid, client_oid, oid;
    ngx_uint_t            i;
    bson_error_t          error;
    const char           *slug, *address;
    mongoc_client_t      *client;
    mongoc_collection_t  *requests, *claims, *categories;
    char                  hex[25], when[32];

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    doc = NULL;
    body = job->body;
    slug = job->category;

    requests = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                            NGX_FEIRA_SVC_REQUESTS_COLL);
    claims = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          NGX_FEIRA_SVC_CLAIMS_COLL);
    categories = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                              NGX_FEIRA_SVC_CATEGORIES_COLL);

    (void) ngx_feira_svc_indexes(client);

    filter = BCON_NEW("_id", BCON_UTF8(slug));
    category = ngx_feira_svc_find_one(categories, filter, &error);
    bson_destroy(filter);

    if (category == NULL) {
        if (error.code) {
            ngx_feira_svc_unavailable(job, "find category", &error);

        } else {
            job->status = NGX_HTTP_BAD_REQUEST;
            job->detail = "the request is invalid";
            ngx_feira_errors_add(&job->errs, "category",
                                 "is not a known category");
        }

        goto done;
    }

    bson_destroy(category);

    bson_oid_init(&rid, NULL);
    bson_oid_to_string(&rid, job->key);
    bson_oid_init_from_string(&client_oid, job->user);

    loc = json_object_get(body, "location");
    address = json_string_value(json_object_get(loc, "address"));

    doc = BCON_NEW("_id", BCON_OID(&rid),
                   "client_id", BCON_OID(&client_oid),
                   "category", BCON_UTF8(slug),
                   "description", BCON_UTF8(json_string_value(
                                     json_object_get(body, "description"))));

    BSON_APPEND_DOCUMENT_BEGIN(doc, "location", &sub);
    BSON_APPEND_DOUBLE(&sub, "lat", job->rq.lat);
    BSON_APPEND_DOUBLE(&sub, "lng", job->rq.lng);

    if (address) {
        BSON_APPEND_UTF8(&sub, "address", address);
    }

    bson_append_document_end(doc, &sub);

    if (job->rq.scheduled_at) {
        BSON_APPEND_DATE_TIME(doc, "scheduled_at",
                              job->rq.scheduled_at * 1000);
    }

    v = json_object_get(body, "budget");
    if (v) {
        ngx_feira_svc_append_money(doc, "budget", v);
    }

    BSON_APPEND_UTF8(doc, "status", NGX_FEIRA_STATE_INITIAL);

    BSON_APPEND_ARRAY_BEGIN(doc, "offered_to", &list);

    for (i = 0; i < job->noffered; i++) {
        bson_oid_init_from_string(&oid, job->offered[i]);
        *ngx_sprintf((u_char *) hex, "%ui", i) = '\0';
        BSON_APPEND_OID(&list, hex, &oid);
    }

    bson_append_array_end(doc, &list);

    BSON_APPEND_DATE_TIME(doc, "created_at", job->now * 1000);
    BSON_APPEND_DATE_TIME(doc, "updated_at", job->now * 1000);
    BSON_APPEND_DATE_TIME(doc, "expires_at",
                          (job->now + job->smcf->request_ttl) * 1000);

    /* the events: created, and offered to the best matches */

    ev = json_pack("{s:s, s:s, s:s, s:n, s:s, s:{s:f, s:f}}",
                   "request_id", job->key,
                   "client_id", job->user,
                   "category", slug,
                   "from", "to", NGX_FEIRA_STATE_INITIAL,
                   "location", "lat", job->rq.lat, "lng", job->rq.lng);

    /* a copy: the body belongs to the event loop's request */
    if (ev && (v = json_object_get(body, "budget"))) {
        json_object_set_new(ev, "budget", json_deep_copy(v));
    }

    if (ev && job->rq.scheduled_at
        && ngx_feira_format_rfc3339(job->rq.scheduled_at, when, sizeof(when)))
    {
        json_object_set_new(ev, "scheduled_at", json_string(when));
    }

    job->events[job->nevents] = ngx_feira_svc_new_event(job,
                                                        "request.created",
                                                        ev);
    if (job->events[job->nevents] == NULL) {
        goto done;
    }

    job->nevents++;

    if (job->noffered) {
        ids = json_array();

        for (i = 0; ids && i < job->noffered; i++) {
            json_array_append_new(ids, json_string(job->offered[i]));
        }

        ev = json_pack("{s:s, s:s, s:o}",
                       "request_id", job->key,
                       "client_id", job->user,
                       "provider_ids", ids);

        job->events[job->nevents] = ngx_feira_svc_new_event(job,
                                                        "request.offered",
                                                        ev);
        if (job->events[job->nevents] == NULL) {
            goto done;
        }

        job->nevents++;
    }

    /* the claim (the outbox) first: the relay publishes it if we die */

    *ngx_snprintf((u_char *) job->claim, sizeof(job->claim) - 1, "%s:new",
                  job->key) = '\0';

    bson_init(&claim);
    BSON_APPEND_UTF8(&claim, "_id", job->claim);
    BSON_APPEND_OID(&claim, "request_id", &rid);
    BSON_APPEND_UTF8(&claim, "from", "new");
    BSON_APPEND_UTF8(&claim, "to", NGX_FEIRA_STATE_INITIAL);
    BSON_APPEND_UTF8(&claim, "action", "create");
    BSON_APPEND_DOCUMENT_BEGIN(&claim, "actor", &sub);
    BSON_APPEND_UTF8(&sub, "id", job->user);
    BSON_APPEND_UTF8(&sub, "role", job->role);
    bson_append_document_end(&claim, &sub);
    BSON_APPEND_DATE_TIME(&claim, "at", job->now * 1000);
    BSON_APPEND_ARRAY_BEGIN(&claim, "events", &events);

    for (i = 0; i < job->nevents; i++) {
        *ngx_sprintf((u_char *) hex, "%ui", i) = '\0';
        BSON_APPEND_UTF8(&events, hex, job->events[i]);
    }

    bson_append_array_end(&claim, &events);
    BSON_APPEND_BOOL(&claim, "published", false);

    if (!mongoc_collection_insert_one(claims, &claim, NULL, NULL, &error)) {
        bson_destroy(&claim);
        ngx_feira_svc_unavailable(job, "insert claim", &error);
        goto done;
    }

    bson_destroy(&claim);

    if (!mongoc_collection_insert_one(requests, doc, NULL, NULL, &error)) {
        ngx_feira_svc_unavailable(job, "insert request", &error);

        /* nothing was created: nothing to publish */
        filter = BCON_NEW("_id", BCON_UTF8(job->claim));
        (void) mongoc_collection_delete_one(claims, filter, NULL, NULL,
                                            &error);
        bson_destroy(filter);
        goto done;
    }

    job->result = ngx_feira_svc_request_view(doc, 1);
    job->status = job->result ? NGX_HTTP_CREATED
                              : NGX_HTTP_INTERNAL_SERVER_ERROR;
    job->cache = json_incref(job->result);

done:

    if (job->status != NGX_HTTP_CREATED) {
        for (i = 0; i < job->nevents; i++) {
            free(job->events[i]);
        }

        job->nevents = 0;
    }

    if (doc) {
        bson_destroy(doc);
    }

    mongoc_collection_destroy(requests);
    mongoc_collection_destroy(claims);
    mongoc_collection_destroy(categories);
    ngx_feira_mongo_push(client);
}


/*
 * A request as its client sees it (offered_to included), for the event
 * loop to check who asks (ngx_feira_svc_relation()) and to cache.
 */

void
ngx_feira_svc_request_load_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t           *doc;
    bson_oid_t        oid;
    mongoc_client_t  *client;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    doc = ngx_feira_svc_request_find(job, client, &oid);

    if (doc != NULL) {
        job->result = ngx_feira_svc_request_view(doc, 1);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(doc);
    }

    ngx_feira_mongo_push(client);
}


void
ngx_feira_svc_request_list_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter;
    bson_oid_t            oid;
    ngx_uint_t            client_side, full;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_REQUESTS_COLL);

    filter = bson_new();
    bson_oid_init_from_string(&oid, job->user);

    /* the caller's own: as the client, or as the assigned provider */
    client_side = 0;

    if (ngx_strcmp(job->filter2, "client") == 0
        || (job->filter2[0] == '\0' && ngx_strcmp(job->role, "client") == 0))
    {
        BSON_APPEND_OID(filter, "client_id", &oid);
        client_side = 1;

    } else if (ngx_strcmp(job->filter2, "provider") == 0
               || ngx_strcmp(job->role, "admin") != 0)
    {
        BSON_APPEND_OID(filter, "provider_id", &oid);
    }

    if (job->filter[0]) {
        BSON_APPEND_UTF8(filter, "status", job->filter);
    }

    if (job->cursor[0]) {
        bson_oid_init_from_string(&oid, job->cursor);
        BCON_APPEND(filter, "_id", "{", "$lt", BCON_OID(&oid), "}");
    }

    full = client_side || ngx_strcmp(job->role, "admin") == 0;

    ngx_feira_svc_page(job, coll, filter, -1, ngx_feira_svc_request_item,
                       &full, "id", "list requests");

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static json_t *
ngx_feira_svc_request_item(const bson_t *doc, void *data)
{
    ngx_uint_t  *full = data;

    return ngx_feira_svc_request_view(doc, *full);
}


void
ngx_feira_svc_request_transition_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    mongoc_client_t  *client;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    ngx_feira_svc_transition(job, client);

    ngx_feira_mongo_push(client);
}


/*
 * One transition of the lifecycle table (job->action by job->user in
 * job->role, "system" for the sweep), committed by its claim.
 */

void
ngx_feira_svc_transition(ngx_feira_svc_job_t *job, mongoc_client_t *client)
{
    bson_t                         *doc, *filter, *update, set, claim, sub;
    bson_t                          events, reply, value;
    json_t                         *ev, *seen;
    bson_oid_t                      oid;
    ngx_uint_t                      rel, participant;
    const char                     *status;
    bson_error_t                    error;
    mongoc_collection_t            *requests, *claims;
    const ngx_feira_transition_t   *t;
    char                            at[32];

    doc = ngx_feira_svc_request_find(job, client, &oid);
    if (doc == NULL) {
        return;
    }

    /* who asks is decided on the view, as reads decide it */
    seen = ngx_feira_svc_request_view(doc, 1);
    if (seen == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(doc);
        return;
    }

    requests = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                            NGX_FEIRA_SVC_REQUESTS_COLL);
    claims = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          NGX_FEIRA_SVC_CLAIMS_COLL);

    status = ngx_feira_svc_bson_str(doc, "status");
    if (status == NULL) {
        status = "";
    }

    ngx_cpystrn((u_char *) job->current, (u_char *) status,
                sizeof(job->current));

    rel = ngx_feira_svc_relation(seen, job);
    participant = rel & (NGX_FEIRA_ACTOR_CLIENT|NGX_FEIRA_ACTOR_ASSIGNED
                         |NGX_FEIRA_ACTOR_PROVIDER|NGX_FEIRA_ACTOR_SYSTEM);

    t = ngx_feira_lifecycle_find(status, job->action);

    if (t == NULL || !(t->actors & rel)) {

        if (!participant && ngx_strcmp(job->role, "admin") != 0) {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such request";
            job->current[0] = '\0';

        } else if (ngx_feira_lifecycle_actors(job->action) & rel) {
            job->status = NGX_HTTP_CONFLICT;
            job->detail = "this transition is not possible in the current "
                          "status";

        } else {
            job->status = NGX_HTTP_FORBIDDEN;
            job->detail = "you may not do this to this request";
            job->current[0] = '\0';
        }

        goto done;
    }

    /* what the transition sets */

    bson_init(&set);
    BSON_APPEND_UTF8(&set, "status", t->to);
    BSON_APPEND_DATE_TIME(&set, "updated_at", job->now * 1000);
    /* accepted_at, started_at, completed_at, cancelled_at, expired_at */
    *ngx_snprintf((u_char *) at, sizeof(at) - 1, "%s_at",
                  ngx_strcmp(t->to, "in_progress") == 0 ? "started" : t->to)
        = '\0';
    BSON_APPEND_DATE_TIME(&set, at, job->now * 1000);

    if (ngx_strcmp(t->action, "accept") == 0) {
        if (ngx_feira_svc_accept_offering(job, client, doc, &set) != NGX_OK) {
            job->current[0] = '\0';
            bson_destroy(&set);
            goto done;
        }

        ngx_cpystrn((u_char *) job->provider, (u_char *) job->user,
                    sizeof(job->provider));
        job->was_offered = ngx_feira_svc_offered(seen, job->user);
    }

    if (ngx_strcmp(t->action, "cancel") == 0) {
        /* "client" or "provider" (the requests contract) */
        BSON_APPEND_UTF8(&set, "cancelled_by",
                         (rel & NGX_FEIRA_ACTOR_CLIENT) ? "client"
                                                        : "provider");
    }


    ev = ngx_feira_svc_transition_data(doc, t, job->provider, &set);

    bson_oid_to_string(&oid, job->key);

    job->events[0] = ngx_feira_svc_new_event(job, t->event, ev);
    if (job->events[0] == NULL) {
        bson_destroy(&set);
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    job->nevents = 1;

    /* the commit: one claim per state left; of two, one insert wins */

    *ngx_snprintf((u_char *) job->claim, sizeof(job->claim) - 1, "%s:%s",
                  job->key, t->from) = '\0';

    bson_init(&claim);
    BSON_APPEND_UTF8(&claim, "_id", job->claim);
    BSON_APPEND_OID(&claim, "request_id", &oid);
    BSON_APPEND_UTF8(&claim, "from", t->from);
    BSON_APPEND_UTF8(&claim, "to", t->to);
    BSON_APPEND_UTF8(&claim, "action", t->action);
    BSON_APPEND_DOCUMENT_BEGIN(&claim, "actor", &sub);
    BSON_APPEND_UTF8(&sub, "id", job->user);
    BSON_APPEND_UTF8(&sub, "role", job->role);
    bson_append_document_end(&claim, &sub);
    BSON_APPEND_DATE_TIME(&claim, "at", job->now * 1000);
    BSON_APPEND_DOCUMENT(&claim, "set", &set);
    BSON_APPEND_ARRAY_BEGIN(&claim, "events", &events);
    BSON_APPEND_UTF8(&events, "0", job->events[0]);
    bson_append_array_end(&claim, &events);
    BSON_APPEND_BOOL(&claim, "published", false);

    if (ngx_feira_svc_claim(job, claims, &claim) != NGX_OK) {
        bson_destroy(&claim);
        bson_destroy(&set);
        goto failed;
    }

    bson_destroy(&claim);

    /* applied with the status as precondition, as on any MongoDB */

    filter = BCON_NEW("_id", BCON_OID(&oid), "status", BCON_UTF8(t->from));
    update = BCON_NEW("$set", BCON_DOCUMENT(&set));

    if (!mongoc_collection_find_and_modify(requests, filter, NULL, update,
                                           NULL, false, false, true, &reply,
                                           &error))
    {
        /* committed: the sweep applies and publishes it */
        ngx_feira_svc_unavailable(job, "apply transition", &error);
        job->detail = "the change is recorded and will be applied shortly";
        free(job->events[0]);
        job->nevents = 0;

    } else if (ngx_feira_svc_bson_value(&reply, &value)) {
        job->result = ngx_feira_svc_request_view(&value,
                                          (rel & NGX_FEIRA_ACTOR_CLIENT) != 0);
        job->cache = ngx_feira_svc_request_view(&value, 1);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_cpystrn((u_char *) job->current, (u_char *) t->to,
                    sizeof(job->current));

    } else {
        /* written by something outside the lifecycle: say so */
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "feira: services: request %s left \"%s\" without a "
                      "claim", job->key, t->from);
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the request changed meanwhile";
        free(job->events[0]);
        job->nevents = 0;
    }

    bson_destroy(&reply);
    bson_destroy(filter);
    bson_destroy(update);
    bson_destroy(&set);

    goto done;

failed:

    free(job->events[0]);
    job->events[0] = NULL;
    job->nevents = 0;

done:

    json_decref(seen);
    bson_destroy(doc);
    mongoc_collection_destroy(requests);
    mongoc_collection_destroy(claims);
}


/*
 * Inserts the claim; on a duplicate, someone else left this state first:
 * 409 with the status that claim leads to.
 */

static ngx_int_t
ngx_feira_svc_claim(ngx_feira_svc_job_t *job, mongoc_collection_t *claims,
    bson_t *claim)
{
    bson_t        *filter, *other;
    const char    *to;
    bson_error_t   error;

    if (mongoc_collection_insert_one(claims, claim, NULL, NULL, &error)) {
        return NGX_OK;
    }

    if (error.code != 11000) {
        ngx_feira_svc_unavailable(job, "insert claim", &error);
        return NGX_ERROR;
    }

    job->status = NGX_HTTP_CONFLICT;
    job->detail = "this transition is not possible in the current status";

    filter = BCON_NEW("_id", BCON_UTF8(job->claim));
    other = ngx_feira_svc_find_one(claims, filter, &error);
    bson_destroy(filter);

    if (other) {
        to = ngx_feira_svc_bson_str(other, "to");

        if (to) {
            ngx_cpystrn((u_char *) job->current, (u_char *) to,
                        sizeof(job->current));
        }

        bson_destroy(other);
    }

    return NGX_ERROR;
}


/* the accepting provider's offering in the category sets the price */

static ngx_int_t
ngx_feira_svc_accept_offering(ngx_feira_svc_job_t *job,
    mongoc_client_t *client, const bson_t *request, bson_t *set)
{
    bson_t               *filter, *offering, price;
    bson_oid_t            provider;
    const char           *category, *currency, *pricing;
    bson_error_t          error;
    mongoc_collection_t  *coll;
    char                  oid[25];

    category = ngx_feira_svc_bson_str(request, "category");
    if (category == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);

    bson_oid_init_from_string(&provider, job->user);
    filter = BCON_NEW("provider_id", BCON_OID(&provider),
                      "category", BCON_UTF8(category));
    offering = ngx_feira_svc_find_one(coll, filter, &error);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);

    if (offering == NULL) {
        if (error.code) {
            ngx_feira_svc_unavailable(job, "find offering", &error);

        } else {
            job->status = NGX_HTTP_FORBIDDEN;
            job->detail = "you have no offering in this category";
        }

        return NGX_ERROR;
    }

    currency = ngx_feira_svc_bson_str(offering, "price.currency");
    pricing = ngx_feira_svc_bson_str(offering, "pricing");

    if (!ngx_feira_svc_bson_oid(offering, "_id", oid) || currency == NULL) {
        bson_destroy(offering);
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    BSON_APPEND_OID(set, "provider_id", &provider);
    bson_oid_init_from_string(&provider, oid);
    BSON_APPEND_OID(set, "offering_id", &provider);

    BSON_APPEND_DOCUMENT_BEGIN(set, "price", &price);
    BSON_APPEND_INT64(&price, "amount",
                      ngx_feira_svc_bson_int(offering, "price.amount"));
    BSON_APPEND_UTF8(&price, "currency", currency);
    bson_append_document_end(set, &price);

    if (pricing) {
        BSON_APPEND_UTF8(set, "pricing", pricing);
    }

    bson_destroy(offering);

    return NGX_OK;
}


/* the "data" of a transition event: docs/events.md */

static json_t *
ngx_feira_svc_transition_data(const bson_t *doc,
    const ngx_feira_transition_t *t, const char *provider, const bson_t *set)
{
    json_t      *data, *price;
    const char  *category;
    char         client[25], assigned[25];

    (void) ngx_feira_svc_bson_oid(doc, "client_id", client);
    category = ngx_feira_svc_bson_str(doc, "category");

    if (provider && provider[0]) {
        ngx_cpystrn((u_char *) assigned, (u_char *) provider,
                    sizeof(assigned));

    } else {
        (void) ngx_feira_svc_bson_oid(doc, "provider_id", assigned);
    }

    data = json_pack("{s:s, s:s, s:s, s:s, s:s}",
                     "request_id", "",
                     "client_id", client,
                     "category", category ? category : "",
                     "from", t->from,
                     "to", t->to);
    if (data == NULL) {
        return NULL;
    }

    if (assigned[0]) {
        json_object_set_new(data, "provider_id", json_string(assigned));
    }

    price = ngx_feira_svc_money_json(set, "price");

    if (price == NULL) {
        price = ngx_feira_svc_money_json(doc, "price");
    }

    if (price) {
        json_object_set_new(data, "price", price);
    }

    return data;
}


static char *
ngx_feira_svc_new_event(ngx_feira_svc_job_t *job, const char *type,
    json_t *data)
{
    bson_oid_t  oid;
    char        id[25];

    if (data == NULL) {
        return NULL;
    }

    if (json_object_get(data, "request_id")) {
        json_object_set_new(data, "request_id", json_string(job->key));
    }

    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, id);

    return ngx_feira_svc_event(type, id, job->now, job->user, job->role,
                               data);
}


/* the request, or NULL with job->status set (404 or 503) */

static bson_t *
ngx_feira_svc_request_find(ngx_feira_svc_job_t *job, mongoc_client_t *client,
    bson_oid_t *oid)
{
    bson_t               *filter, *doc;
    bson_error_t          error;
    mongoc_collection_t  *coll;

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_REQUESTS_COLL);

    bson_oid_init_from_string(oid, job->id);
    filter = BCON_NEW("_id", BCON_OID(oid));
    doc = ngx_feira_svc_find_one(coll, filter, &error);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);

    if (doc == NULL) {
        if (error.code) {
            ngx_feira_svc_unavailable(job, "find request", &error);

        } else {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such request";
        }
    }

    return doc;
}


/* the request as the API shows it; offered_to only to its client */

static json_t *
ngx_feira_svc_request_view(const bson_t *doc, ngx_uint_t full)
{
    static const char *const  client_skip[] = { NULL };
    static const char *const  other_skip[] = { "offered_to", NULL };

    return ngx_feira_svc_bson_json(doc, "id",
                                   full ? client_skip : other_skip);
}


static void
ngx_feira_svc_append_money(bson_t *doc, const char *key, json_t *money)
{
    bson_t  sub;

    BSON_APPEND_DOCUMENT_BEGIN(doc, key, &sub);
    BSON_APPEND_INT64(&sub, "amount",
                      json_integer_value(json_object_get(money, "amount")));
    BSON_APPEND_UTF8(&sub, "currency",
                     json_string_value(json_object_get(money, "currency")));
    bson_append_document_end(doc, &sub);
}


static json_t *
ngx_feira_svc_money_json(const bson_t *doc, const char *key)
{
    char         path[32];
    const char  *currency;

    *ngx_snprintf((u_char *) path, sizeof(path) - 1, "%s.currency", key)
        = '\0';

    currency = ngx_feira_svc_bson_str(doc, path);
    if (currency == NULL) {
        return NULL;
    }

    *ngx_snprintf((u_char *) path, sizeof(path) - 1, "%s.amount", key)
        = '\0';

    return json_pack("{s:I, s:s}",
                     "amount", (json_int_t) ngx_feira_svc_bson_int(doc, path),
                     "currency", currency);
}


/*
 * The sweep (one worker per instance): open requests past expires_at take
 * the "expire" transition; claims still unpublished after relay_after are
 * applied if they were not, and published again.
 */

void
ngx_feira_svc_sweep_job(void *data)
{
    ngx_feira_svc_sweep_t  *sw = data;

    bson_t               *filter, *opts;
    ngx_uint_t            max;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_client_t      *client;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *requests, *claims;
    ngx_feira_svc_job_t  *job;

    max = 2 * NGX_FEIRA_SVC_SWEEP_BATCH;

    sw->jobs = calloc(max, sizeof(ngx_feira_svc_job_t));
    if (sw->jobs == NULL) {
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    requests = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                            NGX_FEIRA_SVC_REQUESTS_COLL);
    claims = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          NGX_FEIRA_SVC_CLAIMS_COLL);

    filter = BCON_NEW("status", BCON_UTF8(NGX_FEIRA_STATE_INITIAL),
                      "expires_at", "{",
                          "$lte", BCON_DATE_TIME(sw->now * 1000),
                      "}");
    opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64(NGX_FEIRA_SVC_SWEEP_BATCH));
    cursor = mongoc_collection_find_with_opts(requests, filter, opts, NULL);

    while (sw->njobs < NGX_FEIRA_SVC_SWEEP_BATCH
           && mongoc_cursor_next(cursor, &doc))
    {
        job = &sw->jobs[sw->njobs];

        job->smcf = sw->smcf;
        job->now = sw->now;
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_cpystrn((u_char *) job->role, (u_char *) "system",
                    sizeof(job->role));
        ngx_cpystrn((u_char *) job->action, (u_char *) "expire",
                    sizeof(job->action));

        if (!ngx_feira_svc_bson_oid(doc, "_id", job->id)) {
            continue;
        }

        ngx_feira_svc_transition(job, client);

        json_decref(job->result);
        job->result = NULL;

        if (job->nevents) {
            sw->njobs++;

        } else {
            json_decref(job->cache);
            ngx_memzero(job, sizeof(ngx_feira_svc_job_t));
        }
    }

    if (mongoc_cursor_error(cursor, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: services: expiry sweep: %s", error.message);
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);

    filter = BCON_NEW("published", BCON_BOOL(false),
                      "at", "{",
                          "$lte", BCON_DATE_TIME((sw->now
                                                  - sw->smcf->relay_after)
                                                 * 1000),
                      "}");
    opts = BCON_NEW("limit", BCON_INT64(NGX_FEIRA_SVC_SWEEP_BATCH));
    cursor = mongoc_collection_find_with_opts(claims, filter, opts, NULL);

    while (sw->njobs < max && mongoc_cursor_next(cursor, &doc)) {
        job = &sw->jobs[sw->njobs];

        job->smcf = sw->smcf;
        job->now = sw->now;

        ngx_feira_svc_relay(job, client, requests, claims, doc);

        if (job->nevents) {
            sw->njobs++;

        } else {
            json_decref(job->cache);
            ngx_memzero(job, sizeof(ngx_feira_svc_job_t));
        }
    }

    if (mongoc_cursor_error(cursor, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: services: relay sweep: %s", error.message);
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(requests);
    mongoc_collection_destroy(claims);
    ngx_feira_mongo_push(client);
}


/* a claim left unpublished: apply it if it was not, then publish again */

static void
ngx_feira_svc_relay(ngx_feira_svc_job_t *job, mongoc_client_t *client,
    mongoc_collection_t *requests, mongoc_collection_t *claims,
    const bson_t *claim)
{
    bson_t          *filter, *request, *update, set;
    uint32_t         len;
    ngx_uint_t       i;
    bson_oid_t       oid;
    bson_iter_t      it, list;
    const char      *id, *from, *status, *ev;
    bson_error_t     error;
    const uint8_t   *buf;

    id = ngx_feira_svc_bson_str(claim, "_id");
    from = ngx_feira_svc_bson_str(claim, "from");

    if (id == NULL || from == NULL
        || !ngx_feira_svc_bson_oid(claim, "request_id", job->key))
    {
        return;
    }

    ngx_cpystrn((u_char *) job->claim, (u_char *) id, sizeof(job->claim));

    bson_oid_init_from_string(&oid, job->key);
    filter = BCON_NEW("_id", BCON_OID(&oid));
    request = ngx_feira_svc_find_one(requests, filter, &error);
    bson_destroy(filter);

    if (request == NULL) {
        if (error.code) {
            return;
        }

        if (ngx_strcmp(from, "new") == 0) {
            /* the creation failed after its claim: nothing happened */
            filter = BCON_NEW("_id", BCON_UTF8(job->claim));
            (void) mongoc_collection_delete_one(claims, filter, NULL, NULL,
                                                &error);
            bson_destroy(filter);
        }

        return;
    }

    status = ngx_feira_svc_bson_str(request, "status");

    if (ngx_strcmp(from, "new") != 0 && status != NULL
        && ngx_strcmp(status, from) == 0
        && bson_iter_init_find(&it, claim, "set")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        /* committed, never applied (MongoDB failed in between) */
        bson_iter_document(&it, &len, &buf);

        if (!bson_init_static(&set, buf, len)) {
            bson_destroy(request);
            return;
        }

        filter = BCON_NEW("_id", BCON_OID(&oid), "status", BCON_UTF8(from));
        update = BCON_NEW("$set", BCON_DOCUMENT(&set));

        if (!mongoc_collection_update_one(requests, filter, update, NULL,
                                          NULL, &error))
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: services: relay of %s: %s", job->claim,
                          error.message);
            bson_destroy(filter);
            bson_destroy(update);
            bson_destroy(request);
            return;
        }

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "feira: services: applied the committed transition %s",
                      job->claim);

        bson_destroy(filter);
        bson_destroy(update);
        bson_destroy(request);

        /* what the cache of request documents is to hold now */
        filter = BCON_NEW("_id", BCON_OID(&oid));
        request = ngx_feira_svc_find_one(requests, filter, &error);
        bson_destroy(filter);

        if (request == NULL) {
            return;
        }
    }

    job->cache = ngx_feira_svc_request_view(request, 1);

    bson_destroy(request);

    if (!bson_iter_init_find(&it, claim, "events")
        || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &list))
    {
        return;
    }

    for (i = 0; i < NGX_FEIRA_SVC_MAX_EVENTS && bson_iter_next(&list); i++) {
        if (!BSON_ITER_HOLDS_UTF8(&list)) {
            continue;
        }

        ev = bson_iter_utf8(&list, NULL);

        job->events[job->nevents] = strdup(ev);

        if (job->events[job->nevents]) {
            job->nevents++;
        }
    }
}
