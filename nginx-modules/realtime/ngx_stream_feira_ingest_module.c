/*
 * feira_ingest: live locations over plain TCP (nginx stream), one line
 * each, for devices without HTTP: "AUTH <access token>", then
 * "LOC <lat> <lng> [<unix ms>]", each answered "OK" or "ERR <reason>".
 * A bad line is answered and the session goes on; a session that does
 * not authenticate within feira_ingest_auth_timeout is closed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_http_feira_realtime_module.h"
#include "ngx_feira_ingest_line.h"


#define NGX_FEIRA_INGEST_OUT       4096


typedef struct {
    ngx_flag_t                   enable;
    ngx_msec_t                   auth_timeout;
    ngx_msec_t                   timeout;
    size_t                       max_line;
} ngx_stream_feira_ingest_srv_conf_t;


typedef struct {
    ngx_stream_session_t        *session;
    ngx_stream_feira_ingest_srv_conf_t  *conf;

    ngx_feira_identity_t         identity;
    u_char                       id[25];
    u_char                       role[16];
    u_char                       jti[33];

    u_char                      *in;
    size_t                       in_len;

    u_char                       out[NGX_FEIRA_INGEST_OUT];
    size_t                       out_pos;
    size_t                       out_len;

    ngx_feira_rt_location_t     *loc;

    unsigned                     authed:1;
    unsigned                     skipping:1;
    unsigned                     closing:1;
} ngx_stream_feira_ingest_ctx_t;


static void *ngx_stream_feira_ingest_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_feira_ingest_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_stream_feira_ingest(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_stream_feira_ingest_init_module(ngx_cycle_t *cycle);
static void ngx_stream_feira_ingest_handler(ngx_stream_session_t *s);
static void ngx_stream_feira_ingest_read(ngx_event_t *rev);
static void ngx_stream_feira_ingest_write(ngx_event_t *wev);
static void ngx_stream_feira_ingest_lines(ngx_stream_feira_ingest_ctx_t *ctx);
static void ngx_stream_feira_ingest_line(ngx_stream_feira_ingest_ctx_t *ctx,
    u_char *line, size_t len);
static void ngx_stream_feira_ingest_auth(ngx_stream_feira_ingest_ctx_t *ctx,
    ngx_feira_ingest_line_t *line);
static void ngx_stream_feira_ingest_loc(ngx_stream_feira_ingest_ctx_t *ctx,
    ngx_feira_ingest_line_t *line);
static void ngx_stream_feira_ingest_loc_done(void *data, ngx_int_t rc);
static void ngx_stream_feira_ingest_answer(ngx_stream_feira_ingest_ctx_t *ctx,
    const char *text);
static ngx_int_t ngx_stream_feira_ingest_flush(
    ngx_stream_feira_ingest_ctx_t *ctx);
static void ngx_stream_feira_ingest_close(ngx_stream_feira_ingest_ctx_t *ctx);


static ngx_command_t  ngx_stream_feira_ingest_commands[] = {

    { ngx_string("feira_ingest"),
      NGX_STREAM_SRV_CONF|NGX_CONF_NOARGS,
      ngx_stream_feira_ingest,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_ingest_auth_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_feira_ingest_srv_conf_t, auth_timeout),
      NULL },

    { ngx_string("feira_ingest_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_feira_ingest_srv_conf_t, timeout),
      NULL },

    { ngx_string("feira_ingest_max_line"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_feira_ingest_srv_conf_t, max_line),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_feira_ingest_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_feira_ingest_create_srv_conf,
                                           /* create server configuration */
    ngx_stream_feira_ingest_merge_srv_conf /* merge server configuration */
};


ngx_module_t  ngx_stream_feira_ingest_module = {
    NGX_MODULE_V1,
    &ngx_stream_feira_ingest_module_ctx,   /* module context */
    ngx_stream_feira_ingest_commands,      /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    ngx_stream_feira_ingest_init_module,   /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* set while the configuration is read, checked in init_module */
static ngx_uint_t  ngx_stream_feira_ingest_used;


static void *
ngx_stream_feira_ingest_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_feira_ingest_srv_conf_t  *iscf;

    iscf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_feira_ingest_srv_conf_t));
    if (iscf == NULL) {
        return NULL;
    }

    iscf->enable = NGX_CONF_UNSET;
    iscf->auth_timeout = NGX_CONF_UNSET_MSEC;
    iscf->timeout = NGX_CONF_UNSET_MSEC;
    iscf->max_line = NGX_CONF_UNSET_SIZE;

    return iscf;
}


static char *
ngx_stream_feira_ingest_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_feira_ingest_srv_conf_t  *prev = parent;
    ngx_stream_feira_ingest_srv_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_msec_value(conf->auth_timeout, prev->auth_timeout, 10000);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 300000);
    ngx_conf_merge_size_value(conf->max_line, prev->max_line, 4096);

    if (conf->auth_timeout == 0 || conf->timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_ingest_auth_timeout\" and "
                           "\"feira_ingest_timeout\" must be greater "
                           "than 0");
        return NGX_CONF_ERROR;
    }

    /* an access token must fit, and a LOC line */
    if (conf->max_line < 256 || conf->max_line > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_ingest_max_line\" must be between 256 "
                           "and 64k");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_feira_ingest(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_feira_ingest_srv_conf_t  *iscf = conf;

    ngx_stream_core_srv_conf_t  *cscf;

    if (iscf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate, or the server has another handler";
    }

    cscf->handler = ngx_stream_feira_ingest_handler;
    iscf->enable = 1;
    ngx_stream_feira_ingest_used = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_feira_ingest_init_module(ngx_cycle_t *cycle)
{
    ngx_http_feira_realtime_main_conf_t  *rmcf;

    if (!ngx_stream_feira_ingest_used) {
        return NGX_OK;
    }

    ngx_stream_feira_ingest_used = 0;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_realtime_module);

    if (rmcf == NULL || !rmcf->used) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"feira_ingest\" needs feira_realtime: a location "
                      "with \"feira_realtime\" in the http block");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_feira_ingest_handler(ngx_stream_session_t *s)
{
    size_t                               n;
    ngx_connection_t                    *c;
    ngx_stream_feira_ingest_ctx_t       *ctx;
    ngx_stream_feira_ingest_srv_conf_t  *iscf;

    c = s->connection;
    iscf = ngx_stream_get_module_srv_conf(s, ngx_stream_feira_ingest_module);

    c->log->action = "reading locations";

    ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_feira_ingest_ctx_t));
    if (ctx == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->in = ngx_pnalloc(c->pool, iscf->max_line);
    if (ctx->in == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->session = s;
    ctx->conf = iscf;
    ngx_stream_set_ctx(s, ctx, ngx_stream_feira_ingest_module);

    c->read->handler = ngx_stream_feira_ingest_read;
    c->write->handler = ngx_stream_feira_ingest_write;

    /* a graceful shutdown (reload) calls the read handler with c->close */
    c->idle = 1;

    if (!ngx_feira_rt_ready()) {
        ngx_stream_feira_ingest_answer(ctx, "ERR unavailable");
        ctx->closing = 1;
        ngx_stream_feira_ingest_write(c->write);
        return;
    }

    /* whatever a preread phase already read */
    if (c->buffer && c->buffer->last > c->buffer->pos) {
        n = ngx_min((size_t) (c->buffer->last - c->buffer->pos),
                    iscf->max_line);
        ngx_memcpy(ctx->in, c->buffer->pos, n);
        ctx->in_len = n;
        c->buffer->pos += n;
    }

    ngx_add_timer(c->read, iscf->auth_timeout);

    ngx_stream_feira_ingest_read(c->read);
}


static void
ngx_stream_feira_ingest_read(ngx_event_t *rev)
{
    ssize_t                         n;
    ngx_connection_t               *c;
    ngx_stream_session_t           *s;
    ngx_stream_feira_ingest_ctx_t  *ctx;

    c = rev->data;
    s = c->data;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_feira_ingest_module);

    if (rev->timedout) {
        rev->timedout = 0;

        if (!ctx->authed) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "feira: ingest: no AUTH in time, closing");
            ngx_stream_feira_ingest_answer(ctx, "ERR auth_timeout");

        } else {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "feira: ingest: idle, closing");
        }

        ctx->closing = 1;
        ngx_stream_feira_ingest_write(c->write);
        return;
    }

    if (c->close) {
        ngx_stream_feira_ingest_close(ctx);
        return;
    }

    while (!ctx->closing) {

        /* one line at a time: the next waits for this one's answer */
        ngx_stream_feira_ingest_lines(ctx);

        if (ctx->closing || ctx->loc) {
            break;
        }

        n = c->recv(c, ctx->in + ctx->in_len,
                    ctx->conf->max_line - ctx->in_len);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_stream_feira_ingest_close(ctx);
            return;
        }

        s->received += n;
        ctx->in_len += n;
    }

    if (ctx->closing) {
        ngx_stream_feira_ingest_write(c->write);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_stream_feira_ingest_close(ctx);
    }
}


static void
ngx_stream_feira_ingest_lines(ngx_stream_feira_ingest_ctx_t *ctx)
{
    u_char  *nl, *line, *end;
    size_t   len;

    while (!ctx->closing && ctx->loc == NULL && ctx->in_len) {

        nl = ngx_strlchr(ctx->in, ctx->in + ctx->in_len, '\n');

        if (nl == NULL) {
            if (ctx->in_len < ctx->conf->max_line) {
                return;
            }

            /* too long: answered once, the rest up to the newline dropped */
            if (!ctx->skipping) {
                ngx_stream_feira_ingest_answer(ctx, "ERR line_too_long");
                ctx->skipping = 1;
            }

            ctx->in_len = 0;
            return;
        }

        line = ctx->in;
        end = nl;

        if (end > line && end[-1] == '\r') {
            end--;
        }

        len = end - line;

        if (ctx->skipping) {
            ctx->skipping = 0;

        } else {
            ngx_stream_feira_ingest_line(ctx, line, len);
        }

        /* the line may not be used any more: its arguments were copied */
        ctx->in_len -= nl + 1 - ctx->in;
        ngx_memmove(ctx->in, nl + 1, ctx->in_len);
    }
}


static void
ngx_stream_feira_ingest_line(ngx_stream_feira_ingest_ctx_t *ctx,
    u_char *text, size_t len)
{
    ngx_connection_t         *c;
    ngx_feira_ingest_line_t   line;

    c = ctx->session->connection;

    if (ngx_feira_ingest_parse(text, len, ngx_feira_now_ms(), &line)
        == NGX_FEIRA_INGEST_EMPTY)
    {
        return;
    }

    if (ctx->authed) {
        /* a sign of life */
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        ngx_add_timer(c->read, ctx->conf->timeout);
    }

    switch (line.command) {

    case NGX_FEIRA_INGEST_AUTH:
        ngx_stream_feira_ingest_auth(ctx, &line);
        return;

    case NGX_FEIRA_INGEST_LOC:
        ngx_stream_feira_ingest_loc(ctx, &line);
        return;

    default:
        ngx_stream_feira_ingest_answer(ctx, "ERR unknown_command");
    }
}


static void
ngx_stream_feira_ingest_auth(ngx_stream_feira_ingest_ctx_t *ctx,
    ngx_feira_ingest_line_t *line)
{
    ngx_int_t              rc;
    ngx_pool_t            *pool;
    const char            *reason;
    ngx_connection_t      *c;
    ngx_feira_identity_t   id;

    c = ctx->session->connection;

    if (line->error) {
        ngx_stream_feira_ingest_answer(ctx, "ERR invalid_token");
        return;
    }

    /* the identity is copied out: a pool per AUTH, not per session */
    pool = ngx_create_pool(512, c->log);
    if (pool == NULL) {
        ngx_stream_feira_ingest_answer(ctx, "ERR unavailable");
        return;
    }

    rc = ngx_feira_auth_token_identity(pool, (u_char *) line->token,
                                       line->token_len, &id, &reason);

    if (rc == NGX_BUSY || rc == NGX_ERROR) {
        ngx_destroy_pool(pool);
        ngx_stream_feira_ingest_answer(ctx, "ERR unavailable");
        return;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "feira: ingest: token rejected: %s", reason);
        ngx_destroy_pool(pool);
        ngx_stream_feira_ingest_answer(ctx, "ERR invalid_token");
        return;
    }

    if (id.role.len != 8 || ngx_strncmp(id.role.data, "provider", 8) != 0
        || id.id.len != 24 || id.jti.len >= sizeof(ctx->jti))
    {
        ngx_destroy_pool(pool);
        ngx_stream_feira_ingest_answer(ctx, "ERR forbidden");
        return;
    }

    ngx_memcpy(ctx->id, id.id.data, 24);
    ngx_memcpy(ctx->role, "provider", 8);
    ngx_memcpy(ctx->jti, id.jti.data, id.jti.len);

    ctx->identity = id;
    ctx->identity.id.data = ctx->id;
    ctx->identity.role.data = ctx->role;
    ctx->identity.jti.data = ctx->jti;
    ngx_str_null(&ctx->identity.sid);

    ngx_destroy_pool(pool);

    ctx->authed = 1;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_add_timer(c->read, ctx->conf->timeout);

    ngx_stream_feira_ingest_answer(ctx, "OK");
}


static void
ngx_stream_feira_ingest_loc(ngx_stream_feira_ingest_ctx_t *ctx,
    ngx_feira_ingest_line_t *line)
{
    u_char     answer[64];
    ngx_int_t  rc;

    if (!ctx->authed) {
        ngx_stream_feira_ingest_answer(ctx, "ERR unauthenticated");
        return;
    }

    if (ngx_feira_auth_revoked(&ctx->identity)) {
        ngx_stream_feira_ingest_answer(ctx, "ERR token_revoked");
        ctx->authed = 0;
        return;
    }

    if (ngx_feira_auth_expired(&ctx->identity)) {
        ngx_stream_feira_ingest_answer(ctx, "ERR token_expired");
        ctx->authed = 0;
        return;
    }

    if (line->error) {
        ngx_snprintf(answer, sizeof(answer), "ERR %s%Z", line->error);
        ngx_stream_feira_ingest_answer(ctx, (const char *) answer);
        return;
    }

    rc = ngx_feira_rt_location_submit(&ctx->loc, &ctx->identity.id,
                                      line->lat, line->lng, line->at_ms,
                                      ngx_stream_feira_ingest_loc_done, ctx);
    if (rc != NGX_OK) {
        ctx->loc = NULL;
        ngx_stream_feira_ingest_answer(ctx, "ERR unavailable");
    }
}


static void
ngx_stream_feira_ingest_loc_done(void *data, ngx_int_t rc)
{
    ngx_stream_feira_ingest_ctx_t  *ctx = data;

    ngx_connection_t  *c;

    c = ctx->session->connection;
    ctx->loc = NULL;

    if (rc == NGX_OK) {
        ngx_stream_feira_ingest_answer(ctx, "OK");

    } else if (rc == NGX_BUSY) {
        ngx_stream_feira_ingest_answer(ctx, "ERR rate_limited");

    } else {
        ngx_stream_feira_ingest_answer(ctx, "ERR unavailable");
    }

    /* the lines that waited behind this one: from the event loop */
    ngx_post_event(c->read, &ngx_posted_events);
}


static void
ngx_stream_feira_ingest_answer(ngx_stream_feira_ingest_ctx_t *ctx,
    const char *text)
{
    size_t             len;
    ngx_connection_t  *c;

    c = ctx->session->connection;
    len = ngx_strlen(text);

    if (ctx->out_len + len + 1 > NGX_FEIRA_INGEST_OUT) {
        /* answers pile up: the client does not read them */
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "feira: ingest: client reads no answers, closing");
        ctx->closing = 1;
        ctx->out_len = ctx->out_pos;
        return;
    }

    ngx_memcpy(ctx->out + ctx->out_len, text, len);
    ctx->out[ctx->out_len + len] = '\n';
    ctx->out_len += len + 1;

    if (ngx_stream_feira_ingest_flush(ctx) == NGX_ERROR) {
        ctx->closing = 1;
    }
}


static ngx_int_t
ngx_stream_feira_ingest_flush(ngx_stream_feira_ingest_ctx_t *ctx)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = ctx->session->connection;

    while (ctx->out_pos < ctx->out_len) {
        n = c->send(c, ctx->out + ctx->out_pos, ctx->out_len - ctx->out_pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN || n == 0) {
            return ngx_handle_write_event(c->write, 0) == NGX_OK
                   ? NGX_AGAIN : NGX_ERROR;
        }

        ctx->out_pos += n;
    }

    ctx->out_pos = 0;
    ctx->out_len = 0;

    return NGX_OK;
}


static void
ngx_stream_feira_ingest_write(ngx_event_t *wev)
{
    ngx_int_t                       rc;
    ngx_connection_t               *c;
    ngx_stream_session_t           *s;
    ngx_stream_feira_ingest_ctx_t  *ctx;

    c = wev->data;
    s = c->data;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_feira_ingest_module);

    if (wev->timedout) {
        ngx_stream_feira_ingest_close(ctx);
        return;
    }

    rc = ngx_stream_feira_ingest_flush(ctx);

    if (rc == NGX_ERROR) {
        ngx_stream_feira_ingest_close(ctx);
        return;
    }

    if (rc == NGX_AGAIN) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, ctx->conf->timeout);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ctx->closing && ctx->loc == NULL) {
        ngx_stream_feira_ingest_close(ctx);
    }
}


static void
ngx_stream_feira_ingest_close(ngx_stream_feira_ingest_ctx_t *ctx)
{
    if (ctx->loc) {
        ngx_feira_rt_location_cancel(ctx->loc);
        ctx->loc = NULL;
    }

    ngx_stream_finalize_session(ctx->session, NGX_STREAM_OK);
}
