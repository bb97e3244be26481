/*
 * The auth shared-memory zone: the deny list (revoked token ids, users
 * logged out everywhere) and the login failure limiter, seen by every
 * worker of the instance.
 */

#include "ngx_http_feira_auth_module.h"


/* both node kinds start at node->color, as in ngx_http_limit_req_module */

typedef struct {
    u_char                       color;
    u_char                       type;
    u_short                      len;
    ngx_queue_t                  queue;
    time_t                       value;     /* token: exp; user: not before */
    time_t                       expire;    /* forget it after this */
    u_char                       data[1];
} ngx_feira_auth_deny_node_t;


typedef struct {
    u_char                       color;
    u_char                       dummy;
    u_short                      len;
    ngx_queue_t                  queue;
    time_t                       window;    /* start of the window */
    time_t                       locked;    /* locked until */
    ngx_uint_t                   failures;
    u_char                       data[1];
} ngx_feira_auth_limit_node_t;


typedef struct {
    ngx_rbtree_t                 deny;
    ngx_rbtree_node_t            deny_sentinel;
    ngx_queue_t                  deny_queue;
    ngx_rbtree_t                 limit;
    ngx_rbtree_node_t            limit_sentinel;
    ngx_queue_t                  limit_queue;
} ngx_feira_auth_sh_t;


typedef struct {
    ngx_feira_auth_sh_t         *sh;
    ngx_slab_pool_t             *shpool;
} ngx_feira_auth_zone_ctx_t;


static void ngx_feira_auth_deny_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_feira_auth_limit_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_feira_auth_lookup(ngx_rbtree_t *tree,
    ngx_uint_t hash, u_char type, u_char *key, size_t len, ngx_uint_t deny);
static void ngx_feira_auth_deny_expire(ngx_feira_auth_zone_ctx_t *ctx,
    time_t now, ngx_uint_t n);
static void ngx_feira_auth_limit_expire(ngx_feira_auth_zone_ctx_t *ctx,
    ngx_http_feira_auth_main_conf_t *amcf, time_t now, ngx_uint_t n);


void *
ngx_feira_auth_zone_ctx(ngx_pool_t *pool)
{
    return ngx_pcalloc(pool, sizeof(ngx_feira_auth_zone_ctx_t));
}


ngx_int_t
ngx_feira_auth_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_feira_auth_zone_ctx_t  *octx = data;

    size_t                      len;
    ngx_feira_auth_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload keeps the deny list: it is the same zone */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_feira_auth_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->deny, &ctx->sh->deny_sentinel,
                    ngx_feira_auth_deny_insert);
    ngx_queue_init(&ctx->sh->deny_queue);

    ngx_rbtree_init(&ctx->sh->limit, &ctx->sh->limit_sentinel,
                    ngx_feira_auth_limit_insert);
    ngx_queue_init(&ctx->sh->limit_queue);

    len = sizeof(" in feira_auth_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in feira_auth_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


void
ngx_feira_auth_deny_add(ngx_shm_zone_t *zone, u_char type, u_char *key,
    size_t len, time_t value, time_t expire)
{
    size_t                       size;
    time_t                       now;
    uint32_t                     hash;
    ngx_rbtree_node_t           *node;
    ngx_feira_auth_zone_ctx_t   *ctx;
    ngx_feira_auth_deny_node_t  *dn;

    if (len == 0 || len > 64) {
        return;
    }

    now = ngx_time();

    if (expire <= now) {
        return;
    }

    ctx = zone->data;
    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_feira_auth_deny_expire(ctx, now, 2);

    node = ngx_feira_auth_lookup(&ctx->sh->deny, hash, type, key, len, 1);

    if (node) {
        dn = (ngx_feira_auth_deny_node_t *) &node->color;

        /* a later "logged out everywhere" supersedes an earlier one */
        if (value > dn->value) {
            dn->value = value;
        }

        if (expire > dn->expire) {
            dn->expire = expire;
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_feira_auth_deny_node_t, data) + len;

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    if (node == NULL) {
        /* the oldest entries go first: they expire first anyway */
        ngx_feira_auth_deny_expire(ctx, NGX_MAX_TIME_T_VALUE, 8);

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "feira: feira_auth_zone \"%V\" is full",
                          &zone->shm.name);
            return;
        }
    }

    node->key = hash;

    dn = (ngx_feira_auth_deny_node_t *) &node->color;
    dn->type = type;
    dn->len = (u_short) len;
    dn->value = value;
    dn->expire = expire;
    ngx_memcpy(dn->data, key, len);

    ngx_rbtree_insert(&ctx->sh->deny, node);
    ngx_queue_insert_head(&ctx->sh->deny_queue, &dn->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_int_t
ngx_feira_auth_deny_check(ngx_shm_zone_t *zone,
    ngx_feira_jwt_claims_t *claims)
{
    size_t                       len;
    ngx_int_t                    denied;
    ngx_rbtree_node_t           *node;
    ngx_feira_auth_zone_ctx_t   *ctx;
    ngx_feira_auth_deny_node_t  *dn;

    ctx = zone->data;
    denied = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    len = ngx_strlen(claims->jti);
    node = ngx_feira_auth_lookup(&ctx->sh->deny,
                                 ngx_crc32_short((u_char *) claims->jti, len),
                                 NGX_FEIRA_AUTH_DENY_TOKEN,
                                 (u_char *) claims->jti, len, 1);
    if (node) {
        denied = 1;

    } else {
        len = ngx_strlen(claims->sub);
        node = ngx_feira_auth_lookup(&ctx->sh->deny,
                                  ngx_crc32_short((u_char *) claims->sub, len),
                                  NGX_FEIRA_AUTH_DENY_USERS,
                                  (u_char *) claims->sub, len, 1);
        if (node) {
            dn = (ngx_feira_auth_deny_node_t *) &node->color;

            /* tokens issued before "logged out everywhere" */
            denied = (claims->iat < dn->value);
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return denied;
}


time_t
ngx_feira_auth_limit_check(ngx_shm_zone_t *zone, ngx_str_t *key)
{
    time_t                        now, wait;
    ngx_rbtree_node_t            *node;
    ngx_feira_auth_zone_ctx_t    *ctx;
    ngx_feira_auth_limit_node_t  *ln;

    ctx = zone->data;
    now = ngx_time();
    wait = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = ngx_feira_auth_lookup(&ctx->sh->limit,
                                 ngx_crc32_short(key->data, key->len), 0,
                                 key->data, key->len, 0);
    if (node) {
        ln = (ngx_feira_auth_limit_node_t *) &node->color;

        if (ln->locked > now) {
            wait = ln->locked - now;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return wait;
}


time_t
ngx_feira_auth_limit_fail(ngx_shm_zone_t *zone, ngx_str_t *key,
    ngx_http_feira_auth_main_conf_t *amcf)
{
    size_t                        size;
    time_t                        now, wait;
    uint32_t                      hash;
    ngx_rbtree_node_t            *node;
    ngx_feira_auth_zone_ctx_t    *ctx;
    ngx_feira_auth_limit_node_t  *ln;

    if (key->len > 512) {
        return 0;
    }

    ctx = zone->data;
    now = ngx_time();
    hash = ngx_crc32_short(key->data, key->len);
    wait = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_feira_auth_limit_expire(ctx, amcf, now, 2);

    node = ngx_feira_auth_lookup(&ctx->sh->limit, hash, 0, key->data,
                                 key->len, 0);

    if (node == NULL) {
        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_feira_auth_limit_node_t, data) + key->len;

        node = ngx_slab_alloc_locked(ctx->shpool, size);

        if (node == NULL) {
            ngx_feira_auth_limit_expire(ctx, amcf, NGX_MAX_TIME_T_VALUE, 8);

            node = ngx_slab_alloc_locked(ctx->shpool, size);
            if (node == NULL) {
                ngx_shmtx_unlock(&ctx->shpool->mutex);
                return 0;
            }
        }

        node->key = hash;

        ln = (ngx_feira_auth_limit_node_t *) &node->color;
        ln->len = (u_short) key->len;
        ln->window = now;
        ln->locked = 0;
        ln->failures = 0;
        ngx_memcpy(ln->data, key->data, key->len);

        ngx_rbtree_insert(&ctx->sh->limit, node);
        ngx_queue_insert_head(&ctx->sh->limit_queue, &ln->queue);

    } else {
        ln = (ngx_feira_auth_limit_node_t *) &node->color;

        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&ctx->sh->limit_queue, &ln->queue);

        if (now - ln->window > amcf->login_window) {
            ln->window = now;
            ln->failures = 0;
        }
    }

    ln->failures++;

    if (ln->failures >= amcf->login_failures) {
        ln->locked = now + amcf->login_lockout;
        wait = amcf->login_lockout;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return wait;
}


void
ngx_feira_auth_limit_reset(ngx_shm_zone_t *zone, ngx_str_t *key)
{
    ngx_rbtree_node_t            *node;
    ngx_feira_auth_zone_ctx_t    *ctx;
    ngx_feira_auth_limit_node_t  *ln;

    ctx = zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = ngx_feira_auth_lookup(&ctx->sh->limit,
                                 ngx_crc32_short(key->data, key->len), 0,
                                 key->data, key->len, 0);
    if (node) {
        ln = (ngx_feira_auth_limit_node_t *) &node->color;
        ngx_queue_remove(&ln->queue);
        ngx_rbtree_delete(&ctx->sh->limit, node);
        ngx_slab_free_locked(ctx->shpool, node);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static ngx_rbtree_node_t *
ngx_feira_auth_lookup(ngx_rbtree_t *tree, ngx_uint_t hash, u_char type,
    u_char *key, size_t len, ngx_uint_t deny)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_feira_auth_deny_node_t   *dn;
    ngx_feira_auth_limit_node_t  *ln;

    node = tree->root;
    sentinel = tree->sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        if (deny) {
            dn = (ngx_feira_auth_deny_node_t *) &node->color;
            rc = (type == dn->type) ? ngx_memn2cmp(key, dn->data, len,
                                                   (size_t) dn->len)
                                    : (ngx_int_t) type - dn->type;

        } else {
            ln = (ngx_feira_auth_limit_node_t *) &node->color;
            rc = ngx_memn2cmp(key, ln->data, len, (size_t) ln->len);
        }

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_feira_auth_deny_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t          **p;
    ngx_feira_auth_deny_node_t  *dn, *dnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            dn = (ngx_feira_auth_deny_node_t *) &node->color;
            dnt = (ngx_feira_auth_deny_node_t *) &temp->color;

            rc = (dn->type == dnt->type)
                 ? ngx_memn2cmp(dn->data, dnt->data, dn->len, dnt->len)
                 : (ngx_int_t) dn->type - dnt->type;

            p = (rc < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_feira_auth_limit_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_feira_auth_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_feira_auth_limit_node_t *) &node->color;
            lnt = (ngx_feira_auth_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_feira_auth_deny_expire(ngx_feira_auth_zone_ctx_t *ctx, time_t now,
    ngx_uint_t n)
{
    ngx_queue_t                 *q;
    ngx_rbtree_node_t           *node;
    ngx_feira_auth_deny_node_t  *dn;

    /* entries are queued in about the order they expire */

    while (n-- && !ngx_queue_empty(&ctx->sh->deny_queue)) {
        q = ngx_queue_last(&ctx->sh->deny_queue);
        dn = ngx_queue_data(q, ngx_feira_auth_deny_node_t, queue);

        if (dn->expire > now) {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) dn - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&ctx->sh->deny, node);
        ngx_slab_free_locked(ctx->shpool, node);
    }
}


static void
ngx_feira_auth_limit_expire(ngx_feira_auth_zone_ctx_t *ctx,
    ngx_http_feira_auth_main_conf_t *amcf, time_t now, ngx_uint_t n)
{
    time_t                        end;
    ngx_queue_t                  *q;
    ngx_rbtree_node_t            *node;
    ngx_feira_auth_limit_node_t  *ln;

    while (n-- && !ngx_queue_empty(&ctx->sh->limit_queue)) {
        q = ngx_queue_last(&ctx->sh->limit_queue);
        ln = ngx_queue_data(q, ngx_feira_auth_limit_node_t, queue);

        end = ngx_max(ln->window + amcf->login_window, ln->locked);

        if (now != NGX_MAX_TIME_T_VALUE && end > now) {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&ctx->sh->limit, node);
        ngx_slab_free_locked(ctx->shpool, node);
    }
}
