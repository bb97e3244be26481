/*
 * The periodic sweep, in worker 0 of each instance: open requests expire,
 * unpublished events are relayed.  Every
 * step is a conditional change, so instances sweeping at once are safe.
 */

#include "ngx_http_feira_services_module.h"


static void ngx_feira_svc_sweep_handler(ngx_event_t *ev);
static void ngx_feira_svc_sweep_done(ngx_http_request_t *r, void *data);
static void ngx_feira_svc_sweep_published(void *data, ngx_int_t rc);
static void ngx_feira_svc_sweep_free(ngx_feira_svc_sweep_t *sw);
static void ngx_feira_svc_indexes_job(void *data);


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_event_t                           ngx_feira_svc_sweep_ev;
static ngx_http_feira_services_main_conf_t  *ngx_feira_svc_sweep_conf;
static ngx_uint_t                            ngx_feira_svc_sweep_busy;


ngx_int_t
ngx_feira_svc_sweep_init(ngx_cycle_t *cycle,
    ngx_http_feira_services_main_conf_t *smcf)
{
    if (ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_feira_svc_sweep_conf = smcf;
    ngx_feira_svc_sweep_busy = 0;

    /* the unique offering index, before anyone needs it */
    (void) ngx_feira_thread_post_cycle(cycle, ngx_feira_svc_indexes_job,
                                       NULL, NULL);

    ngx_feira_svc_sweep_ev.handler = ngx_feira_svc_sweep_handler;
    ngx_feira_svc_sweep_ev.log = cycle->log;
    ngx_feira_svc_sweep_ev.data = NULL;
    ngx_feira_svc_sweep_ev.cancelable = 1;

    ngx_add_timer(&ngx_feira_svc_sweep_ev, smcf->sweep_interval);

    return NGX_OK;
}


void
ngx_feira_svc_sweep_exit(void)
{
    if (ngx_feira_svc_sweep_ev.timer_set) {
        ngx_del_timer(&ngx_feira_svc_sweep_ev);
    }

    ngx_feira_svc_sweep_conf = NULL;
}


static void
ngx_feira_svc_sweep_handler(ngx_event_t *ev)
{
    ngx_feira_svc_sweep_t                *sw;
    ngx_http_feira_services_main_conf_t  *smcf;

    smcf = ngx_feira_svc_sweep_conf;

    if (smcf == NULL || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    /* one sweep at a time: a slow store is not piled on */
    if (smcf->requests && !ngx_feira_svc_sweep_busy) {

        sw = ngx_calloc(sizeof(ngx_feira_svc_sweep_t), ev->log);

        if (sw) {
            sw->smcf = smcf;
            sw->now = (int64_t) ngx_time();

            if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                            ngx_feira_svc_sweep_job,
                                            ngx_feira_svc_sweep_done, sw)
                == NGX_OK)
            {
                ngx_feira_svc_sweep_busy = 1;

            } else {
                ngx_free(sw);
            }
        }
    }

    ngx_add_timer(ev, smcf->sweep_interval);
}


static void
ngx_feira_svc_sweep_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_sweep_t  *sw = data;

    ngx_uint_t  i;

    sw->pending = 1;

    for (i = 0; i < sw->njobs; i++) {
        ngx_feira_svc_cache_put(&sw->jobs[i], NULL, NULL);

        if (ngx_feira_svc_publish(&sw->jobs[i], ngx_feira_svc_sweep_published,
                                  sw)
            == NGX_OK)
        {
            sw->pending++;
        }
    }

    if (sw->njobs) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "feira: services: sweep published %ui events",
                      sw->njobs);
    }

    ngx_feira_svc_sweep_published(sw, NGX_OK);
}


static void
ngx_feira_svc_sweep_published(void *data, ngx_int_t rc)
{
    ngx_feira_svc_sweep_t  *sw = data;

    if (--sw->pending) {
        return;
    }

    ngx_feira_svc_sweep_free(sw);

    ngx_feira_svc_sweep_busy = 0;
}


static void
ngx_feira_svc_sweep_free(ngx_feira_svc_sweep_t *sw)
{
    ngx_uint_t  i, k;

    if (sw->jobs) {
        for (i = 0; i < sw->njobs; i++) {
            for (k = 0; k < sw->jobs[i].nevents; k++) {
                free(sw->jobs[i].events[k]);
            }

            json_decref(sw->jobs[i].result);
            json_decref(sw->jobs[i].cache);
        }

        free(sw->jobs);
    }

    ngx_free(sw);
}


/* a job: the indexes, once per worker 0 start */

static void
ngx_feira_svc_indexes_job(void *data)
{
    mongoc_client_t  *client;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    (void) ngx_feira_svc_indexes(client);

    ngx_feira_mongo_push(client);
}
