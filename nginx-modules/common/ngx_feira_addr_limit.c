/*
 * Connections per client address, across the workers, for connections
 * that outlive their HTTP request (WebSockets): limit_conn counts
 * requests, and a WebSocket's request is freed after the handshake.
 * A shared-memory zone of counters, as limit_conn keeps them; a slot is
 * given back by a cleanup of the connection's pool, however it ends.
 */

#include "ngx_feira_common.h"


typedef struct {
    u_char                       color;
    u_char                       len;
    u_short                      count;
    u_char                       data[1];
} ngx_feira_addr_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
} ngx_feira_addr_sh_t;


typedef struct {
    ngx_feira_addr_sh_t         *sh;
    ngx_slab_pool_t             *shpool;
} ngx_feira_addr_ctx_t;


typedef struct {
    ngx_shm_zone_t              *zone;
    ngx_rbtree_node_t           *node;
} ngx_feira_addr_slot_t;


static ngx_int_t ngx_feira_addr_init_zone(ngx_shm_zone_t *zone, void *data);
static void ngx_feira_addr_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_feira_addr_lookup(ngx_rbtree_t *rbtree,
    ngx_str_t *key, uint32_t hash);
static void ngx_feira_addr_release(void *data);


/* "<directive> <size>": the zone, named after the directive's module */

ngx_shm_zone_t *
ngx_feira_addr_limit_zone(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *size,
    void *tag)
{
    ssize_t                n;
    ngx_shm_zone_t        *zone;
    ngx_feira_addr_ctx_t  *ctx;

    n = ngx_parse_size(size);

    if (n == NGX_ERROR || n < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" must be at least %uzk, not \"%V\"",
                           name, 8 * ngx_pagesize / 1024, size);
        return NULL;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_feira_addr_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    zone = ngx_shared_memory_add(cf, name, n, tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already defined", name);
        return NULL;
    }

    zone->init = ngx_feira_addr_init_zone;
    zone->data = ctx;

    return zone;
}


static ngx_int_t
ngx_feira_addr_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_feira_addr_ctx_t  *octx = data;

    ngx_feira_addr_ctx_t  *ctx;

    ctx = zone->data;

    if (octx) {
        /* a reload: the counters of the live connections go on */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_feira_addr_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_feira_addr_insert);

    return NGX_OK;
}


/*
 * Takes a slot of C's address: NGX_OK (given back when C's pool goes),
 * NGX_BUSY at the limit, NGX_ERROR when the zone or memory is short.
 */

ngx_int_t
ngx_feira_addr_limit_acquire(ngx_connection_t *c, ngx_shm_zone_t *zone,
    ngx_uint_t limit)
{
    size_t                  n;
    uint32_t                hash;
    ngx_str_t               key;
    ngx_pool_cleanup_t     *cln;
    ngx_rbtree_node_t      *node;
    ngx_feira_addr_ctx_t   *ctx;
    ngx_feira_addr_node_t  *an;
    ngx_feira_addr_slot_t  *slot;

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        key.data = (u_char *) &((struct sockaddr_in *) c->sockaddr)->sin_addr;
        key.len = 4;
        break;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        key.data = ((struct sockaddr_in6 *) c->sockaddr)->sin6_addr.s6_addr;
        key.len = 16;
        break;
#endif

    default:
        /* a unix socket: one client, the proxy in front */
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(c->pool, sizeof(ngx_feira_addr_slot_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ctx = zone->data;
    hash = ngx_crc32_short(key.data, key.len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = ngx_feira_addr_lookup(&ctx->sh->rbtree, &key, hash);

    if (node == NULL) {
        n = offsetof(ngx_rbtree_node_t, color)
            + offsetof(ngx_feira_addr_node_t, data) + key.len;

        node = ngx_slab_alloc_locked(ctx->shpool, n);
        if (node == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        an = (ngx_feira_addr_node_t *) &node->color;
        node->key = hash;
        an->len = (u_char) key.len;
        an->count = 0;
        ngx_memcpy(an->data, key.data, key.len);

        ngx_rbtree_insert(&ctx->sh->rbtree, node);

    } else {
        an = (ngx_feira_addr_node_t *) &node->color;
    }

    if (an->count >= limit || an->count == 0xffff) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    an->count++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    slot = cln->data;
    slot->zone = zone;
    slot->node = node;
    cln->handler = ngx_feira_addr_release;

    return NGX_OK;
}


static void
ngx_feira_addr_release(void *data)
{
    ngx_feira_addr_slot_t  *slot = data;

    ngx_feira_addr_ctx_t   *ctx;
    ngx_feira_addr_node_t  *an;

    ctx = slot->zone->data;
    an = (ngx_feira_addr_node_t *) &slot->node->color;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    an->count--;

    if (an->count == 0) {
        ngx_rbtree_delete(&ctx->sh->rbtree, slot->node);
        ngx_slab_free_locked(ctx->shpool, slot->node);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static void
ngx_feira_addr_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t      **p;
    ngx_feira_addr_node_t   *an, *ant;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            an = (ngx_feira_addr_node_t *) &node->color;
            ant = (ngx_feira_addr_node_t *) &temp->color;

            p = (ngx_memn2cmp(an->data, ant->data, an->len, ant->len) < 0)
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


static ngx_rbtree_node_t *
ngx_feira_addr_lookup(ngx_rbtree_t *rbtree, ngx_str_t *key, uint32_t hash)
{
    ngx_int_t               rc;
    ngx_rbtree_node_t      *node, *sentinel;
    ngx_feira_addr_node_t  *an;

    node = rbtree->root;
    sentinel = rbtree->sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        an = (ngx_feira_addr_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, an->data, key->len, (size_t) an->len);

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}
