/*
 * feira_idempotency: Idempotency-Key for the POSTs of any location.
 *
 * The first request with a key runs and its answer is kept (MongoDB,
 * collection "idempotency"); a retry with the same key and body gets that
 * answer again, marked "Idempotent-Replayed: true"; the same key with
 * another body is 422.  A retry that arrives while the first is still
 * running waits for it, briefly, then gets 409.  Keys are scoped by the
 * caller, the method and the URI.  Server errors (5xx) are not kept, so
 * that a retry runs again.
 */

#include "ngx_feira_common.h"

#include <openssl/evp.h>
#include <openssl/sha.h>


#define NGX_FEIRA_IDEM_MAX_KEY     128
#define NGX_FEIRA_IDEM_MAX_BODY    (64 * 1024)
#define NGX_FEIRA_IDEM_WAIT        50
#define NGX_FEIRA_IDEM_WAIT_TRIES  60

#define NGX_FEIRA_IDEM_NEW         1
#define NGX_FEIRA_IDEM_REPLAY      2
#define NGX_FEIRA_IDEM_MISMATCH    3
#define NGX_FEIRA_IDEM_PENDING     4
#define NGX_FEIRA_IDEM_ERROR       5


typedef struct {
    ngx_flag_t                enable;
} ngx_http_feira_idem_loc_conf_t;


typedef struct {
    time_t                    ttl;
} ngx_http_feira_idem_main_conf_t;


typedef struct {
    ngx_int_t                 status;        /* the phase's answer */
    ngx_uint_t                owner;         /* this request runs the key */
    ngx_uint_t                tries;
    ngx_event_t               wait;
    time_t                    ttl;

    char                      id[SHA256_DIGEST_LENGTH * 2 + 1];
    char                      fingerprint[SHA256_DIGEST_LENGTH * 2 + 1];

    /* the answer, captured by the filters */
    ngx_uint_t                resp_status;
    ngx_str_t                 resp_type;
    u_char                   *resp_body;
    size_t                    resp_len;
    unsigned                  too_large:1;

    /* the job's result */
    ngx_uint_t                found;
    ngx_uint_t                replay_status;
    char                     *replay_type;   /* malloc()ed */
    u_char                   *replay_body;   /* malloc()ed */
    size_t                    replay_len;
} ngx_http_feira_idem_ctx_t;


/* what is kept once the request is over: no request pool in the job */
typedef struct {
    char                      id[SHA256_DIGEST_LENGTH * 2 + 1];
    ngx_uint_t                status;
    ngx_uint_t                forget;
    char                     *type;
    u_char                   *body;
    size_t                    len;
} ngx_http_feira_idem_store_t;


static ngx_int_t ngx_http_feira_idem_handler(ngx_http_request_t *r);
static void ngx_http_feira_idem_body(ngx_http_request_t *r);
static void ngx_http_feira_idem_claim(ngx_http_request_t *r,
    ngx_http_feira_idem_ctx_t *ctx);
static void ngx_http_feira_idem_claim_job(void *data);
static void ngx_http_feira_idem_claimed(ngx_http_request_t *r, void *data);
static void ngx_http_feira_idem_wait_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_feira_idem_replay(ngx_http_request_t *r,
    ngx_http_feira_idem_ctx_t *ctx);
static void ngx_http_feira_idem_fail(ngx_http_request_t *r,
    ngx_uint_t status, const char *detail);
static ngx_int_t ngx_http_feira_idem_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_idem_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_feira_idem_cleanup(void *data);
static void ngx_http_feira_idem_store_job(void *data);
static void ngx_http_feira_idem_stored(ngx_http_request_t *r, void *data);
static ngx_table_elt_t *ngx_http_feira_idem_key(ngx_http_request_t *r);
static void ngx_http_feira_idem_hex(u_char *md, char *hex);
static void *ngx_http_feira_idem_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_idem_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_feira_idem_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_idem_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_feira_idem_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_feira_idem_commands[] = {

    { ngx_string("feira_idempotency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_idem_loc_conf_t, enable),
      NULL },

    { ngx_string("feira_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_idem_main_conf_t, ttl),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_idem_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_feira_idem_init,              /* postconfiguration */

    ngx_http_feira_idem_create_main_conf,  /* create main configuration */
    ngx_http_feira_idem_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_idem_create_loc_conf,   /* create location configuration */
    ngx_http_feira_idem_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_feira_idempotency_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_idem_module_ctx,       /* module context */
    ngx_http_feira_idem_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_feira_idem_handler(ngx_http_request_t *r)
{
    u_char                           *p;
    ngx_int_t                         rc;
    ngx_table_elt_t                  *key;
    ngx_pool_cleanup_t               *cln;
    ngx_http_feira_idem_ctx_t        *ctx;
    ngx_http_feira_idem_loc_conf_t   *ilcf;
    ngx_http_feira_idem_main_conf_t  *imcf;

    ilcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_idempotency_module);

    if (!ilcf->enable || r->method != NGX_HTTP_POST || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_idempotency_module);

    if (ctx) {
        /* back in the phases once the key is claimed */
        return ctx->status;
    }

    key = ngx_http_feira_idem_key(r);

    if (key == NULL) {
        return NGX_DECLINED;
    }

    for (p = key->value.data; p < key->value.data + key->value.len; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            break;
        }
    }

    if (key->value.len == 0 || key->value.len > NGX_FEIRA_IDEM_MAX_KEY
        || p != key->value.data + key->value.len)
    {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                   "Idempotency-Key must be 1 to 128 "
                                   "visible ASCII characters", NULL));
        return NGX_DONE;
    }

    imcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_feira_idempotency_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_feira_idem_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->status = NGX_DONE;
    ctx->ttl = imcf->ttl;
    ctx->wait.handler = ngx_http_feira_idem_wait_handler;
    ctx->wait.data = r;
    ctx->wait.log = r->connection->log;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_feira_idem_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_feira_idempotency_module);

    /* the body is read here, kept for the content handler, and hashed */
    rc = ngx_http_read_client_request_body(r, ngx_http_feira_idem_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_feira_idem_body(ngx_http_request_t *r)
{
    u_char                      md[EVP_MAX_MD_SIZE];
    ngx_buf_t                  *b;
    EVP_MD_CTX                 *sha;
    ngx_chain_t                *cl;
    ngx_table_elt_t            *key;
    ngx_feira_identity_t       *id;
    ngx_http_feira_idem_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_idempotency_module);

    r->preserve_body = 1;

    sha = EVP_MD_CTX_new();
    if (sha == NULL || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(sha);
        ngx_http_feira_idem_fail(r, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
        return;
    }

    /* the same body: the same fingerprint */

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (r->request_body->temp_file || b->in_file) {
                EVP_MD_CTX_free(sha);
                ngx_http_feira_idem_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "the request body is too large");
                return;
            }

            EVP_DigestUpdate(sha, b->pos, b->last - b->pos);
        }
    }

    EVP_DigestFinal_ex(sha, md, NULL);
    ngx_http_feira_idem_hex(md, ctx->fingerprint);

    /* the key's scope: who, how and where */

    key = ngx_http_feira_idem_key(r);
    id = ngx_feira_identity(r);

    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);

    if (id) {
        EVP_DigestUpdate(sha, id->id.data, id->id.len);
    }

    EVP_DigestUpdate(sha, "", 1);
    EVP_DigestUpdate(sha, r->method_name.data, r->method_name.len);
    EVP_DigestUpdate(sha, "", 1);
    EVP_DigestUpdate(sha, r->uri.data, r->uri.len);
    EVP_DigestUpdate(sha, "", 1);
    EVP_DigestUpdate(sha, key->value.data, key->value.len);
    EVP_DigestFinal_ex(sha, md, NULL);
    EVP_MD_CTX_free(sha);

    ngx_http_feira_idem_hex(md, ctx->id);

    ngx_http_feira_idem_claim(r, ctx);
}


static void
ngx_http_feira_idem_claim(ngx_http_request_t *r,
    ngx_http_feira_idem_ctx_t *ctx)
{
    ctx->found = NGX_FEIRA_IDEM_ERROR;

    if (ngx_feira_thread_post(r, ngx_http_feira_idem_claim_job,
                              ngx_http_feira_idem_claimed, ctx)
        != NGX_OK)
    {
        ngx_http_feira_idem_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "the server is busy, try again");
    }
}


/* a job: the key is taken, or what it holds is read */

static void
ngx_http_feira_idem_claim_job(void *data)
{
    ngx_http_feira_idem_ctx_t  *ctx = data;

    bson_t               *doc, *filter;
    time_t                now;
    uint32_t              len;
    bson_iter_t           it;
    const bson_t         *found;
    bson_error_t          error;
    const char           *s;
    const uint8_t        *bin;
    bson_subtype_t        subtype;
    mongoc_cursor_t      *cursor;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;
    ngx_uint_t            attempt;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "idempotency");
    now = time(NULL);

    for (attempt = 0; attempt < 2; attempt++) {

        /* an expired key is free again */
        filter = BCON_NEW("_id", BCON_UTF8(ctx->id),
                          "expires_at", "{",
                              "$lt", BCON_DATE_TIME((int64_t) now * 1000),
                          "}");
        (void) mongoc_collection_delete_one(coll, filter, NULL, NULL, NULL);
        bson_destroy(filter);

        doc = BCON_NEW("_id", BCON_UTF8(ctx->id),
                       "fingerprint", BCON_UTF8(ctx->fingerprint),
                       "state", BCON_UTF8("pending"),
                       "created_at", BCON_DATE_TIME((int64_t) now * 1000),
                       "expires_at",
                           BCON_DATE_TIME(((int64_t) now + ctx->ttl) * 1000));

        if (mongoc_collection_insert_one(coll, doc, NULL, NULL, &error)) {
            bson_destroy(doc);
            ctx->found = NGX_FEIRA_IDEM_NEW;
            goto done;
        }

        bson_destroy(doc);

        if (error.code != 11000) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: idempotency: %s", error.message);
            goto done;
        }

        /* the key exists: what does it hold? */

        filter = BCON_NEW("_id", BCON_UTF8(ctx->id));
        cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
        bson_destroy(filter);

        if (!mongoc_cursor_next(cursor, &found)) {
            /* deleted in between: try once more */
            mongoc_cursor_destroy(cursor);
            continue;
        }

        s = NULL;

        if (bson_iter_init_find(&it, found, "fingerprint")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            s = bson_iter_utf8(&it, NULL);
        }

        if (s == NULL || ngx_strcmp(s, ctx->fingerprint) != 0) {
            ctx->found = NGX_FEIRA_IDEM_MISMATCH;

        } else if (!bson_iter_init_find(&it, found, "state")
                   || !BSON_ITER_HOLDS_UTF8(&it)
                   || ngx_strcmp(bson_iter_utf8(&it, NULL), "done") != 0)
        {
            ctx->found = NGX_FEIRA_IDEM_PENDING;

        } else {
            ctx->found = NGX_FEIRA_IDEM_REPLAY;

            if (bson_iter_init_find(&it, found, "status")
                && BSON_ITER_HOLDS_INT32(&it))
            {
                ctx->replay_status = (ngx_uint_t) bson_iter_int32(&it);
            }

            if (bson_iter_init_find(&it, found, "content_type")
                && BSON_ITER_HOLDS_UTF8(&it))
            {
                ctx->replay_type = strdup(bson_iter_utf8(&it, NULL));
            }

            if (bson_iter_init_find(&it, found, "body")
                && BSON_ITER_HOLDS_BINARY(&it))
            {
                bson_iter_binary(&it, &subtype, &len, &bin);

                ctx->replay_body = malloc(len ? len : 1);
                if (ctx->replay_body) {
                    memcpy(ctx->replay_body, bin, len);
                    ctx->replay_len = len;
                }
            }

            if (ctx->replay_status == 0) {
                ctx->found = NGX_FEIRA_IDEM_ERROR;
            }
        }

        mongoc_cursor_destroy(cursor);
        break;
    }

done:

    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_http_feira_idem_claimed(ngx_http_request_t *r, void *data)
{
    ngx_http_feira_idem_ctx_t  *ctx = data;

    switch (ctx->found) {

    case NGX_FEIRA_IDEM_NEW:
        ctx->owner = 1;
        ctx->status = NGX_DECLINED;

        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;

    case NGX_FEIRA_IDEM_REPLAY:
        ngx_http_finalize_request(r, ngx_http_feira_idem_replay(r, ctx));
        return;

    case NGX_FEIRA_IDEM_MISMATCH:
        ngx_http_feira_idem_fail(r, NGX_HTTP_UNPROCESSABLE_ENTITY,
                                 "this Idempotency-Key was used with "
                                 "another request body");
        return;

    case NGX_FEIRA_IDEM_PENDING:
        /* the first request is still running: wait for its answer */
        if (++ctx->tries < NGX_FEIRA_IDEM_WAIT_TRIES) {
            ngx_add_timer(&ctx->wait, NGX_FEIRA_IDEM_WAIT);
            return;
        }

        ngx_http_feira_idem_fail(r, NGX_HTTP_CONFLICT,
                                 "a request with this Idempotency-Key is "
                                 "still in progress");
        return;

    default:
        ngx_http_feira_idem_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "the idempotency store is unavailable");
        return;
    }
}


static void
ngx_http_feira_idem_wait_handler(ngx_event_t *ev)
{
    ngx_http_request_t         *r = ev->data;
    ngx_http_feira_idem_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_idempotency_module);

    ngx_http_feira_idem_claim(r, ctx);
    ngx_http_run_posted_requests(r->connection);
}


static ngx_int_t
ngx_http_feira_idem_replay(ngx_http_request_t *r,
    ngx_http_feira_idem_ctx_t *ctx)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_feira_add_header(r, "Idempotent-Replayed", (u_char *) "true", 4)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = ctx->replay_status;
    r->headers_out.content_length_n = ctx->replay_len;

    if (ctx->replay_type) {
        r->headers_out.content_type.len = ngx_strlen(ctx->replay_type);
        r->headers_out.content_type.data = ngx_pnalloc(r->pool,
                                            r->headers_out.content_type.len);
        if (r->headers_out.content_type.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(r->headers_out.content_type.data, ctx->replay_type,
                   r->headers_out.content_type.len);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (ctx->replay_len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, ctx->replay_len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->pos, ctx->replay_body, ctx->replay_len);
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_feira_idem_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    ngx_http_finalize_request(r, ngx_feira_send_problem(r, status, detail,
                                                        NULL));
}


/* the filters keep the answer of the request that owns the key */

static ngx_int_t
ngx_http_feira_idem_header_filter(ngx_http_request_t *r)
{
    ngx_http_feira_idem_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_idempotency_module);

    if (ctx && ctx->owner && r == r->main) {
        ctx->resp_status = r->headers_out.status;
        ctx->resp_type = r->headers_out.content_type;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_feira_idem_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    u_char                     *p;
    size_t                      len;
    ngx_chain_t                *cl;
    ngx_http_feira_idem_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_idempotency_module);

    if (ctx == NULL || !ctx->owner || r != r->main || ctx->too_large) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {

        if (cl->buf->in_file || ngx_buf_special(cl->buf)) {
            if (cl->buf->in_file) {
                ctx->too_large = 1;
            }

            continue;
        }

        len = cl->buf->last - cl->buf->pos;

        if (ctx->resp_len + len > NGX_FEIRA_IDEM_MAX_BODY) {
            ctx->too_large = 1;
            break;
        }

        if (ctx->resp_body == NULL) {
            ctx->resp_body = ngx_pnalloc(r->pool, NGX_FEIRA_IDEM_MAX_BODY);
            if (ctx->resp_body == NULL) {
                ctx->too_large = 1;
                break;
            }
        }

        p = ctx->resp_body + ctx->resp_len;
        ngx_memcpy(p, cl->buf->pos, len);
        ctx->resp_len += len;
    }

    return ngx_http_next_body_filter(r, in);
}


/* the request is over: its answer is kept, or the key let go */

static void
ngx_http_feira_idem_cleanup(void *data)
{
    ngx_http_feira_idem_ctx_t  *ctx = data;

    ngx_http_feira_idem_store_t  *st;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    free(ctx->replay_type);
    free(ctx->replay_body);

    if (!ctx->owner) {
        return;
    }

    st = ngx_calloc(sizeof(ngx_http_feira_idem_store_t), ngx_cycle->log);
    if (st == NULL) {
        return;
    }

    ngx_memcpy(st->id, ctx->id, sizeof(st->id));
    st->status = ctx->resp_status;

    /* server errors and answers too large to keep are run again */
    st->forget = (ctx->resp_status == 0 || ctx->resp_status >= 500
                  || ctx->too_large);

    if (!st->forget) {
        st->type = ngx_alloc(ctx->resp_type.len + 1, ngx_cycle->log);
        st->body = ngx_alloc(ctx->resp_len + 1, ngx_cycle->log);

        if (st->type == NULL || st->body == NULL) {
            st->forget = 1;

        } else {
            ngx_memcpy(st->type, ctx->resp_type.data, ctx->resp_type.len);
            st->type[ctx->resp_type.len] = '\0';
            ngx_memcpy(st->body, ctx->resp_body, ctx->resp_len);
            st->len = ctx->resp_len;
        }
    }

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_http_feira_idem_store_job,
                                    ngx_http_feira_idem_stored, st)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: idempotency: cannot keep an answer");
        ngx_http_feira_idem_stored(NULL, st);
    }
}


static void
ngx_http_feira_idem_store_job(void *data)
{
    ngx_http_feira_idem_store_t  *st = data;

    bson_t               *filter, *update;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "idempotency");

    filter = BCON_NEW("_id", BCON_UTF8(st->id),
                      "state", BCON_UTF8("pending"));

    if (st->forget) {
        if (!mongoc_collection_delete_one(coll, filter, NULL, NULL, &error)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: idempotency: %s", error.message);
        }

    } else {
        update = BCON_NEW("$set", "{",
                              "state", BCON_UTF8("done"),
                              "status", BCON_INT32((int32_t) st->status),
                              "content_type", BCON_UTF8(st->type),
                              "body", BCON_BIN(BSON_SUBTYPE_BINARY, st->body,
                                               (uint32_t) st->len),
                          "}");

        if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL,
                                          &error))
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: idempotency: %s", error.message);
        }

        bson_destroy(update);
    }

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_http_feira_idem_stored(ngx_http_request_t *r, void *data)
{
    ngx_http_feira_idem_store_t  *st = data;

    ngx_free(st->type);
    ngx_free(st->body);
    ngx_free(st);
}


static ngx_table_elt_t *
ngx_http_feira_idem_key(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Idempotency-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Idempotency-Key",
                               h[i].key.len) == 0)
        {
            return &h[i];
        }
    }
}


static void
ngx_http_feira_idem_hex(u_char *md, char *hex)
{
    *ngx_hex_dump((u_char *) hex, md, SHA256_DIGEST_LENGTH) = '\0';
}


static void *
ngx_http_feira_idem_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_idem_main_conf_t  *imcf;

    imcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_idem_main_conf_t));
    if (imcf == NULL) {
        return NULL;
    }

    imcf->ttl = NGX_CONF_UNSET;

    return imcf;
}


static char *
ngx_http_feira_idem_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_idem_main_conf_t  *imcf = conf;

    ngx_conf_init_value(imcf->ttl, 24 * 60 * 60);

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_idem_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_idem_loc_conf_t  *ilcf;

    ilcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_idem_loc_conf_t));
    if (ilcf == NULL) {
        return NULL;
    }

    ilcf->enable = NGX_CONF_UNSET;

    return ilcf;
}


static char *
ngx_http_feira_idem_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_feira_idem_loc_conf_t  *prev = parent;
    ngx_http_feira_idem_loc_conf_t  *conf = child;

    ngx_http_feira_main_conf_t  *fmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    if (conf->enable) {
        fmcf = ngx_http_conf_get_module_main_conf(cf,
                                                ngx_http_feira_common_module);

        if (fmcf->mongo_uri.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"feira_idempotency\" needs "
                               "\"feira_mongo_uri\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_idem_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* after the access phase: the caller is known and scopes the key */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_feira_idem_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_feira_idem_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_feira_idem_body_filter;

    return NGX_OK;
}
