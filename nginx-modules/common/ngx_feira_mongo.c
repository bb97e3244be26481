/*
 * MongoDB: one mongoc client pool per nginx worker.  Clients are popped and
 * pushed only from jobs that run in the thread pool (ngx_feira_thread.c).
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_MONGO_MAX_POOL  64


/* per-worker state: set up in init_process, torn down in exit_process */
static mongoc_client_pool_t  *ngx_feira_mongo_pool;
static char                  *ngx_feira_mongo_dbname;


ngx_int_t
ngx_feira_mongo_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf)
{
    char          *text;
    mongoc_uri_t  *uri;
    bson_error_t   error;

    if (fmcf->mongo_uri.len == 0) {
        return NGX_OK;
    }

    mongoc_init();

    text = ngx_pnalloc(cycle->pool, fmcf->mongo_uri.len + 1);
    if (text == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) text, fmcf->mongo_uri.data,
                fmcf->mongo_uri.len + 1);

    uri = mongoc_uri_new_with_error(text, &error);
    if (uri == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "feira: invalid mongo uri: %s", error.message);
        return NGX_ERROR;
    }

    /* a store that is down must fail a call quickly, not after 30 s */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri,
                                       MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       (int32_t) fmcf->mongo_timeout);
    }

    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                       (int32_t) fmcf->mongo_timeout);
    }

    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                       (int32_t) fmcf->mongo_timeout * 5);
    }

    mongoc_uri_set_appname(uri, "feira-nginx");

    ngx_feira_mongo_pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);

    if (ngx_feira_mongo_pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "feira: mongoc_client_pool_new() failed");
        return NGX_ERROR;
    }

    mongoc_client_pool_set_error_api(ngx_feira_mongo_pool,
                                     MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_max_size(ngx_feira_mongo_pool,
                                NGX_FEIRA_MONGO_MAX_POOL);
    ngx_feira_stats_mongo_apm(ngx_feira_mongo_pool, cycle->log);

    ngx_feira_mongo_dbname = ngx_pnalloc(cycle->pool, fmcf->mongo_db.len + 1);
    if (ngx_feira_mongo_dbname == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) ngx_feira_mongo_dbname, fmcf->mongo_db.data,
                fmcf->mongo_db.len + 1);

    return NGX_OK;
}


void
ngx_feira_mongo_exit_process(void)
{
    if (ngx_feira_mongo_pool == NULL) {
        return;
    }

    mongoc_client_pool_destroy(ngx_feira_mongo_pool);
    ngx_feira_mongo_pool = NULL;

    mongoc_cleanup();
}


ngx_int_t
ngx_feira_mongo_configured(void)
{
    return ngx_feira_mongo_pool != NULL;
}


mongoc_client_t *
ngx_feira_mongo_pop(void)
{
    if (ngx_feira_mongo_pool == NULL) {
        return NULL;
    }

    return mongoc_client_pool_pop(ngx_feira_mongo_pool);
}


void
ngx_feira_mongo_push(mongoc_client_t *client)
{
    mongoc_client_pool_push(ngx_feira_mongo_pool, client);
}


const char *
ngx_feira_mongo_db(void)
{
    return ngx_feira_mongo_dbname;
}


/* a job: runs in a pool thread */

ngx_int_t
ngx_feira_mongo_ping(char *err, size_t len)
{
    bool              ok;
    bson_t           *cmd;
    bson_error_t      error;
    mongoc_client_t  *client;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        snprintf(err, len, "not configured");
        return NGX_ERROR;
    }

    cmd = BCON_NEW("ping", BCON_INT32(1));

    ok = mongoc_client_command_simple(client, "admin", cmd, NULL, NULL,
                                      &error);

    bson_destroy(cmd);
    ngx_feira_mongo_push(client);

    if (!ok) {
        ngx_feira_stats_mongo_error(&error);
        snprintf(err, len, "%s", error.message);
        return NGX_ERROR;
    }

    return NGX_OK;
}
