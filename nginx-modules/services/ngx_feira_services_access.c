/*
 * Who the caller of a job is to a service request, decided on the request
 * as its client sees it (the JSON of the API, ids as hex strings), so that
 * the MongoDB jobs and the event loop (a request read from the cache)
 * apply the same rules.  Pure: no pool, no I/O, any thread.
 */

#include "ngx_http_feira_services_module.h"


static ngx_uint_t ngx_feira_svc_is(json_t *view, const char *field,
    const char *id);


/* NGX_FEIRA_ACTOR_* bits */

ngx_uint_t
ngx_feira_svc_relation(json_t *view, ngx_feira_svc_job_t *job)
{
    ngx_uint_t  rel;

    if (ngx_strcmp(job->role, "system") == 0) {
        return NGX_FEIRA_ACTOR_SYSTEM;
    }

    rel = 0;

    if (ngx_feira_svc_is(view, "client_id", job->user)) {
        rel |= NGX_FEIRA_ACTOR_CLIENT;
    }

    if (ngx_strcmp(job->role, "provider") == 0) {
        rel |= NGX_FEIRA_ACTOR_PROVIDER;

        if (ngx_feira_svc_is(view, "provider_id", job->user)) {
            rel |= NGX_FEIRA_ACTOR_ASSIGNED;
        }
    }

    return rel;
}


/*
 * The client, the assigned provider and admins read a request; a provider
 * it was offered to reads it while it is open, to decide.
 */

ngx_uint_t
ngx_feira_svc_visible(json_t *view, ngx_feira_svc_job_t *job,
    ngx_uint_t rel)
{
    const char  *status;

    if (rel & (NGX_FEIRA_ACTOR_CLIENT|NGX_FEIRA_ACTOR_ASSIGNED)
        || ngx_strcmp(job->role, "admin") == 0)
    {
        return 1;
    }

    if (!(rel & NGX_FEIRA_ACTOR_PROVIDER)) {
        return 0;
    }

    status = json_string_value(json_object_get(view, "status"));

    return status != NULL
           && ngx_strcmp(status, NGX_FEIRA_STATE_INITIAL) == 0
           && ngx_feira_svc_offered(view, job->user);
}


ngx_uint_t
ngx_feira_svc_offered(json_t *view, const char *id)
{
    size_t       i;
    json_t      *item;
    const char  *s;

    json_array_foreach(json_object_get(view, "offered_to"), i, item) {
        s = json_string_value(item);

        if (s != NULL && ngx_strcmp(s, id) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_feira_svc_is(json_t *view, const char *field, const char *id)
{
    const char  *s;

    s = json_string_value(json_object_get(view, field));

    return s != NULL && id[0] != '\0' && ngx_strcmp(s, id) == 0;
}
