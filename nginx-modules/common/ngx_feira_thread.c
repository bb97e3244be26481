/*
 * Blocking work (MongoDB, argon2, Kafka metadata) in an nginx thread pool,
 * with the request held (r->main->blocked) until the job is done.
 *
 * Contract: the caller owns a reference to the request (a content handler
 * does r->main->count++ and returns NGX_DONE; a body handler already owns
 * one) and the done handler finalizes the request, or posts another job.
 */

#include "ngx_feira_common.h"

#include <sys/resource.h>


typedef struct {
    ngx_http_request_t  *request;
    ngx_feira_job_pt     job;
    ngx_feira_done_pt    done;
    void                *data;
    ngx_int_t            nice;
} ngx_feira_thread_ctx_t;


static void ngx_feira_thread_handler(void *data, ngx_log_t *log);
static void ngx_feira_thread_event_handler(ngx_event_t *ev);
static void ngx_feira_thread_cycle_handler(ngx_event_t *ev);


ngx_int_t
ngx_feira_thread_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, void *data)
{
    ngx_thread_task_t           *task;
    ngx_feira_thread_ctx_t      *ctx;
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_common_module);

    if (fmcf->thread_pool == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: no thread pool configured");
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_feira_thread_ctx_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    ctx = task->ctx;
    ctx->request = r;
    ctx->job = job;
    ctx->done = done;
    ctx->data = data;
    ctx->nice = fmcf->thread_nice;

    task->handler = ngx_feira_thread_handler;
    task->event.data = ctx;
    task->event.handler = ngx_feira_thread_event_handler;

    if (ngx_thread_task_post(fmcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    r->main->blocked++;
    ngx_feira_stats_job_posted();

    return NGX_OK;
}


static void
ngx_feira_thread_handler(void *data, ngx_log_t *log)
{
    ngx_feira_thread_ctx_t  *ctx = data;

    /*
     * The pool's threads yield to the event loop: a CPU-bound job (argon2)
     * must not slow the requests that need no job.  Linux sets the nice
     * value per thread; each thread sets its own once.
     */

    static __thread ngx_uint_t  niced;

    if (!niced) {
        niced = 1;

        if (ctx->nice
            && setpriority(PRIO_PROCESS, (id_t) gettid(), (int) ctx->nice)
               == -1)
        {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "feira: setpriority(%d) failed", (int) ctx->nice);
        }
    }

    ngx_feira_stats_job_started();
    ctx->job(ctx->data);
}


static void
ngx_feira_thread_event_handler(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_feira_thread_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    ngx_feira_stats_job_done();

    ctx->done(r, ctx->data);

    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_feira_thread_post_cycle(ngx_cycle_t *cycle, ngx_feira_job_pt job,
    ngx_feira_done_pt done, void *data)
{
    ngx_thread_task_t           *task;
    ngx_feira_thread_ctx_t      *ctx;
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_common_module);
    if (fmcf == NULL || fmcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

    /* freed by the completion handler: start-up work has no request pool */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_feira_thread_ctx_t), cycle->log);
    if (task == NULL) {
        return NGX_ERROR;
    }

    ctx = (ngx_feira_thread_ctx_t *) (task + 1);
    ctx->job = job;
    ctx->done = done;
    ctx->data = data;
    ctx->nice = fmcf->thread_nice;

    task->ctx = ctx;
    task->handler = ngx_feira_thread_handler;
    task->event.data = task;
    task->event.handler = ngx_feira_thread_cycle_handler;
    task->event.log = cycle->log;

    if (ngx_thread_task_post(fmcf->thread_pool, task) != NGX_OK) {
        ngx_free(task);
        return NGX_ERROR;
    }

    ngx_feira_stats_job_posted();

    return NGX_OK;
}


static void
ngx_feira_thread_cycle_handler(ngx_event_t *ev)
{
    ngx_thread_task_t       *task = ev->data;
    ngx_feira_thread_ctx_t  *ctx = task->ctx;

    ngx_feira_stats_job_done();

    if (ctx->done) {
        ctx->done(NULL, ctx->data);
    }

    ngx_free(task);
}
