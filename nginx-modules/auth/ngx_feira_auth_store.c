/*
 * Users and refresh tokens in MongoDB, and argon2id password hashing.
 *
 * Every function here but ngx_feira_auth_store_start() is a job: it runs in
 * a thread of the pool, blocks as long as it needs, and touches no nginx
 * pool and no event; it reports through its ngx_feira_auth_job_t.
 */

#include "ngx_http_feira_auth_module.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>


#define NGX_FEIRA_AUTH_SALT_LEN   16
#define NGX_FEIRA_AUTH_HASH_LEN   32
#define NGX_FEIRA_AUTH_ENC_LEN    256


static ngx_int_t ngx_feira_auth_indexes(mongoc_client_t *client);
static ngx_int_t ngx_feira_auth_hash(ngx_http_feira_auth_main_conf_t *amcf,
    const char *password, size_t len, char *encoded);
static void ngx_feira_auth_dummy_verify(ngx_http_feira_auth_main_conf_t *amcf,
    const char *password, size_t len);
static ngx_int_t ngx_feira_auth_session(ngx_feira_auth_job_t *job,
    mongoc_client_t *client, const bson_oid_t *user, const char *family);
static ngx_int_t ngx_feira_auth_sign(ngx_feira_auth_job_t *job,
    const char *sub, const char *role);
static void ngx_feira_auth_token_hash(const char *token, size_t len,
    char *hex);
static json_t *ngx_feira_auth_user_view(const bson_t *doc);
static void ngx_feira_auth_unavailable(ngx_feira_auth_job_t *job,
    const char *what, bson_error_t *error);
static void ngx_feira_auth_seed_job(void *data);
static ngx_int_t ngx_feira_auth_rotation_claim(ngx_feira_auth_job_t *job,
    mongoc_client_t *client, const char *hash);
static void ngx_feira_auth_revoke_family(ngx_feira_auth_job_t *job,
    mongoc_collection_t *tokens, const char *family);


/* set once a worker has created the indexes (idempotent anyway) */
static volatile int  ngx_feira_auth_indexed;

static pthread_mutex_t  ngx_feira_auth_dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char             ngx_feira_auth_dummy[NGX_FEIRA_AUTH_ENC_LEN];


void
ngx_feira_auth_register_job(void *data)
{
    ngx_feira_auth_job_t  *job = data;

    bson_t               *doc;
    bson_oid_t            oid;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;
    char                  encoded[NGX_FEIRA_AUTH_ENC_LEN];

    if (ngx_feira_auth_hash(job->amcf, job->password, job->password_len,
                            encoded)
        != NGX_OK)
    {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    if (ngx_feira_auth_indexes(client) != NGX_OK) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        job->detail = "the user store is unavailable";
        ngx_feira_mongo_push(client);
        return;
    }

    bson_oid_init(&oid, NULL);

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "email", BCON_UTF8(job->email),
                   "email_lc", BCON_UTF8(job->email_lc),
                   "password_hash", BCON_UTF8(encoded),
                   "name", BCON_UTF8(job->name),
                   "role", BCON_UTF8(job->role),
                   "rating_avg", BCON_DOUBLE(0.0),
                   "rating_count", BCON_INT32(0),
                   "created_at", BCON_DATE_TIME((int64_t) job->now * 1000),
                   "updated_at", BCON_DATE_TIME((int64_t) job->now * 1000));

    if (job->phone) {
        BSON_APPEND_UTF8(doc, "phone", job->phone);
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");

    if (!mongoc_collection_insert_one(users, doc, NULL, NULL, &error)) {

        if (error.code == 11000) {
            job->status = NGX_HTTP_CONFLICT;
            job->detail = "this e-mail is already registered";

        } else {
            ngx_feira_auth_unavailable(job, "insert user", &error);
        }

        goto done;
    }

    job->user = ngx_feira_auth_user_view(doc);

    if (job->user == NULL
        || ngx_feira_auth_session(job, client, &oid, NULL) != NGX_OK)
    {
        goto done;
    }

    job->status = NGX_HTTP_CREATED;

done:

    bson_destroy(doc);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_auth_login_job(void *data)
{
    ngx_feira_auth_job_t  *job = data;

    bson_t                *filter;
    bson_iter_t            it;
    bson_oid_t             oid;
    const bson_t          *doc;
    bson_error_t           error;
    const char            *hash;
    mongoc_cursor_t       *cursor;
    mongoc_client_t       *client;
    mongoc_collection_t   *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");
    filter = BCON_NEW("email_lc", BCON_UTF8(job->email_lc));
    cursor = mongoc_collection_find_with_opts(users, filter, NULL, NULL);

    job->status = NGX_HTTP_UNAUTHORIZED;
    job->detail = "invalid e-mail or password";

    if (!mongoc_cursor_next(cursor, &doc)) {

        if (mongoc_cursor_error(cursor, &error)) {
            ngx_feira_auth_unavailable(job, "find user", &error);
            goto done;
        }

        /* as slow as a known e-mail: the answer tells nothing */
        ngx_feira_auth_dummy_verify(job->amcf, job->password,
                                    job->password_len);
        goto done;
    }

    hash = NULL;

    if (bson_iter_init_find(&it, doc, "password_hash")
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        hash = bson_iter_utf8(&it, NULL);
    }

    if (hash == NULL
        || argon2id_verify(hash, job->password, job->password_len)
           != ARGON2_OK)
    {
        if (hash == NULL) {
            ngx_feira_auth_dummy_verify(job->amcf, job->password,
                                        job->password_len);
        }

        goto done;
    }

    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)) {
        goto done;
    }

    bson_oid_copy(bson_iter_oid(&it), &oid);

    job->user = ngx_feira_auth_user_view(doc);

    if (job->user == NULL
        || ngx_feira_auth_session(job, client, &oid, NULL) != NGX_OK)
    {
        goto done;
    }

    job->status = NGX_HTTP_OK;
    job->detail = NULL;

done:

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/* a rotation claimed once: NGX_DECLINED when another one has it */

static ngx_int_t
ngx_feira_auth_rotation_claim(ngx_feira_auth_job_t *job,
    mongoc_client_t *client, const char *hash)
{
    bool                  ok;
    bson_t               *doc;
    bson_error_t          error;
    mongoc_collection_t  *claims;

    claims = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          "refresh_rotations");

    doc = BCON_NEW("_id", BCON_UTF8(hash),
                   "at", BCON_DATE_TIME((int64_t) job->now * 1000));

    ok = mongoc_collection_insert_one(claims, doc, NULL, NULL, &error);

    bson_destroy(doc);
    mongoc_collection_destroy(claims);

    if (ok) {
        return NGX_OK;
    }

    if (error.code == 11000) {
        return NGX_DECLINED;
    }

    ngx_feira_auth_unavailable(job, "claim rotation", &error);

    return NGX_ERROR;
}


static void
ngx_feira_auth_revoke_family(ngx_feira_auth_job_t *job,
    mongoc_collection_t *tokens, const char *family)
{
    bson_t        *filter, *update;
    bson_error_t   error;

    filter = BCON_NEW("family_id", BCON_UTF8(family));
    update = BCON_NEW("$set", "{", "status", BCON_UTF8("revoked"), "}");

    if (!mongoc_collection_update_many(tokens, filter, update, NULL, NULL,
                                       &error))
    {
        ngx_feira_auth_unavailable(job, "revoke family", &error);
    }

    bson_destroy(filter);
    bson_destroy(update);
}


void
ngx_feira_auth_refresh_job(void *data)
{
    ngx_feira_auth_job_t  *job = data;

    bool                             found;
    bson_t                          *query, *update, reply, *filter;
    bson_iter_t                      it, sub;
    bson_oid_t                       oid;
    const bson_t                    *doc;
    bson_error_t                     error;
    const char                      *status, *family;
    mongoc_cursor_t                 *cursor;
    mongoc_client_t                 *client;
    mongoc_collection_t             *tokens, *users;
    char                             hash[65], fam[33];

    ngx_feira_auth_token_hash(job->refresh, job->refresh_len, hash);

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    tokens = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          "refresh_tokens");
    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");

    job->status = NGX_HTTP_UNAUTHORIZED;
    job->detail = "invalid refresh token";

    /* rotation: one atomic conditional update, the token must be active */

    query = BCON_NEW("_id", BCON_UTF8(hash),
                     "status", BCON_UTF8("active"),
                     "expires_at", "{",
                         "$gt", BCON_DATE_TIME((int64_t) job->now * 1000),
                     "}");
    update = BCON_NEW("$set", "{",
                          "status", BCON_UTF8("rotated"),
                          "rotated_at",
                              BCON_DATE_TIME((int64_t) job->now * 1000),
                      "}");

    found = mongoc_collection_find_and_modify(tokens, query, NULL, update,
                                              NULL, false, false, false,
                                              &reply, &error);
    bson_destroy(query);
    bson_destroy(update);

    if (!found) {
        ngx_feira_auth_unavailable(job, "rotate refresh token", &error);
        bson_destroy(&reply);
        goto done;
    }

    doc = NULL;

    if (bson_iter_init_find(&it, &reply, "value")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        found = true;

    } else {
        found = false;
    }

    if (!found) {
        bson_destroy(&reply);

        /* not active: a rotated or revoked token presented again is theft */

        filter = BCON_NEW("_id", BCON_UTF8(hash));
        cursor = mongoc_collection_find_with_opts(tokens, filter, NULL, NULL);
        bson_destroy(filter);

        if (mongoc_cursor_next(cursor, &doc)
            && bson_iter_init_find(&it, doc, "status")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            status = bson_iter_utf8(&it, NULL);

            if (ngx_strcmp(status, "active") != 0
                && bson_iter_init_find(&it, doc, "family_id")
                && BSON_ITER_HOLDS_UTF8(&it))
            {
                family = bson_iter_utf8(&it, NULL);

                ngx_feira_auth_revoke_family(job, tokens, family);

                if (bson_iter_init_find(&it, doc, "user_id")
                    && BSON_ITER_HOLDS_OID(&it))
                {
                    bson_oid_to_string(bson_iter_oid(&it), job->claims.sub);
                    job->reused = 1;
                }
            }
        }

        mongoc_cursor_destroy(cursor);
        goto done;
    }

    /* the rotated token's user and family */

    if (!bson_iter_recurse(&it, &sub)
        || !bson_iter_find(&sub, "user_id") || !BSON_ITER_HOLDS_OID(&sub))
    {
        bson_destroy(&reply);
        goto done;
    }

    bson_oid_copy(bson_iter_oid(&sub), &oid);

    fam[0] = '\0';

    if (bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "family_id")
        && BSON_ITER_HOLDS_UTF8(&sub))
    {
        ngx_cpystrn((u_char *) fam, (u_char *) bson_iter_utf8(&sub, NULL),
                    sizeof(fam));
    }

    bson_destroy(&reply);

    /*
     * The conditional update is exclusive on MongoDB, not on FerretDB: of
     * concurrent rotations of one token, the one that claims it wins, the
     * others are a reuse.
     */

    switch (ngx_feira_auth_rotation_claim(job, client, hash)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_feira_auth_revoke_family(job, tokens, fam);
        bson_oid_to_string(&oid, job->claims.sub);
        job->reused = 1;
        goto done;

    default:
        goto done;
    }

    filter = BCON_NEW("_id", BCON_OID(&oid));
    cursor = mongoc_collection_find_with_opts(users, filter, NULL, NULL);
    bson_destroy(filter);

    if (!mongoc_cursor_next(cursor, &doc)) {
        if (mongoc_cursor_error(cursor, &error)) {
            ngx_feira_auth_unavailable(job, "find user", &error);
        }

        mongoc_cursor_destroy(cursor);
        goto done;
    }

    job->user = ngx_feira_auth_user_view(doc);
    mongoc_cursor_destroy(cursor);

    if (job->user == NULL || fam[0] == '\0'
        || ngx_feira_auth_session(job, client, &oid, fam) != NGX_OK)
    {
        goto done;
    }

    job->status = NGX_HTTP_OK;
    job->detail = NULL;

done:

    mongoc_collection_destroy(tokens);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_auth_logout_job(void *data)
{
    ngx_feira_auth_job_t  *job = data;

    bson_t               *filter, *update;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *tokens;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    tokens = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          "refresh_tokens");

    filter = BCON_NEW("family_id", BCON_UTF8(job->sid));
    update = BCON_NEW("$set", "{", "status", BCON_UTF8("revoked"), "}");

    if (mongoc_collection_update_many(tokens, filter, update, NULL, NULL,
                                      &error))
    {
        job->status = NGX_HTTP_NO_CONTENT;

    } else {
        ngx_feira_auth_unavailable(job, "revoke family", &error);
    }

    bson_destroy(filter);
    bson_destroy(update);
    mongoc_collection_destroy(tokens);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_auth_me_job(void *data)
{
    ngx_feira_auth_job_t  *job = data;

    bson_t               *filter;
    bson_oid_t            oid;
    const bson_t         *doc;
    bson_error_t          error;
    mongoc_cursor_t      *cursor;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");

    bson_oid_init_from_string(&oid, job->user_id);
    filter = BCON_NEW("_id", BCON_OID(&oid));
    cursor = mongoc_collection_find_with_opts(users, filter, NULL, NULL);

    if (mongoc_cursor_next(cursor, &doc)) {
        job->user = ngx_feira_auth_user_view(doc);
        job->status = job->user ? NGX_HTTP_OK
                                : NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (mongoc_cursor_error(cursor, &error)) {
        ngx_feira_auth_unavailable(job, "find user", &error);

    } else {
        /* the user was deleted: the token names nobody */
        job->status = NGX_HTTP_UNAUTHORIZED;
        job->detail = "the token's user no longer exists";
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/* an admin account named by feira_auth_admin, created by the first worker */

void
ngx_feira_auth_store_start(ngx_cycle_t *cycle,
    ngx_http_feira_auth_main_conf_t *amcf)
{
    if (amcf->admin_email.len == 0 || ngx_worker != 0) {
        return;
    }

    if (ngx_feira_thread_post_cycle(cycle, ngx_feira_auth_seed_job, NULL,
                                    amcf)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "feira: auth: cannot post the admin seed job");
    }
}


static void
ngx_feira_auth_seed_job(void *data)
{
    ngx_http_feira_auth_main_conf_t  *amcf = data;

    bson_t               *filter, *update, *opts;
    time_t                now;
    bson_oid_t            oid;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;
    char                  encoded[NGX_FEIRA_AUTH_ENC_LEN];

    if (ngx_feira_auth_hash(amcf, (char *) amcf->admin_password.data,
                            amcf->admin_password.len, encoded)
        != NGX_OK)
    {
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    (void) ngx_feira_auth_indexes(client);

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");
    now = time(NULL);
    bson_oid_init(&oid, NULL);

    /* the password is set once; the role is kept admin on every start */

    filter = BCON_NEW("email_lc", BCON_UTF8((char *) amcf->admin_email.data));
    update = BCON_NEW("$set", "{",
                          "role", BCON_UTF8("admin"),
                      "}",
                      "$setOnInsert", "{",
                          "_id", BCON_OID(&oid),
                          "email", BCON_UTF8((char *) amcf->admin_email.data),
                          "password_hash", BCON_UTF8(encoded),
                          "name", BCON_UTF8("Administrator"),
                          "rating_avg", BCON_DOUBLE(0.0),
                          "rating_count", BCON_INT32(0),
                          "created_at", BCON_DATE_TIME((int64_t) now * 1000),
                          "updated_at", BCON_DATE_TIME((int64_t) now * 1000),
                      "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));

    if (!mongoc_collection_update_one(users, filter, update, opts, NULL,
                                      &error))
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: auth: admin seed failed: %s", error.message);
    }

    bson_destroy(filter);
    bson_destroy(update);
    bson_destroy(opts);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


static ngx_int_t
ngx_feira_auth_indexes(mongoc_client_t *client)
{
    bool           ok;
    bson_t        *cmd;
    bson_error_t   error;

    if (ngx_feira_auth_indexed) {
        return NGX_OK;
    }

    cmd = BCON_NEW("createIndexes", BCON_UTF8("users"),
                   "indexes", "[",
                       "{",
                           "key", "{", "email_lc", BCON_INT32(1), "}",
                           "name", BCON_UTF8("email_lc_unique"),
                           "unique", BCON_BOOL(true),
                       "}",
                   "]");

    ok = mongoc_client_command_simple(client, ngx_feira_mongo_db(), cmd, NULL,
                                      NULL, &error);
    bson_destroy(cmd);

    if (!ok) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: auth: createIndexes users: %s", error.message);
        return NGX_ERROR;
    }

    cmd = BCON_NEW("createIndexes", BCON_UTF8("refresh_tokens"),
                   "indexes", "[",
                       "{",
                           "key", "{", "family_id", BCON_INT32(1), "}",
                           "name", BCON_UTF8("family_id"),
                       "}",
                   "]");

    ok = mongoc_client_command_simple(client, ngx_feira_mongo_db(), cmd, NULL,
                                      NULL, &error);
    bson_destroy(cmd);

    if (!ok) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: auth: createIndexes refresh_tokens: %s",
                      error.message);
        return NGX_ERROR;
    }

    ngx_feira_auth_indexed = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_feira_auth_hash(ngx_http_feira_auth_main_conf_t *amcf,
    const char *password, size_t len, char *encoded)
{
    int            rc;
    unsigned char  salt[NGX_FEIRA_AUTH_SALT_LEN];

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return NGX_ERROR;
    }

    /* the parameters are kept in the encoded string: they can be raised */
    rc = argon2id_hash_encoded(amcf->argon2_t, amcf->argon2_m,
                               amcf->argon2_p, password, len, salt,
                               sizeof(salt), NGX_FEIRA_AUTH_HASH_LEN,
                               encoded, NGX_FEIRA_AUTH_ENC_LEN);
    if (rc != ARGON2_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: auth: argon2: %s", argon2_error_message(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_feira_auth_dummy_verify(ngx_http_feira_auth_main_conf_t *amcf,
    const char *password, size_t len)
{
    char  hash[NGX_FEIRA_AUTH_ENC_LEN];

    pthread_mutex_lock(&ngx_feira_auth_dummy_lock);

    if (ngx_feira_auth_dummy[0] == '\0') {
        (void) ngx_feira_auth_hash(amcf, "feira-dummy-password", 20,
                                   ngx_feira_auth_dummy);
    }

    ngx_cpystrn((u_char *) hash, (u_char *) ngx_feira_auth_dummy,
                sizeof(hash));

    pthread_mutex_unlock(&ngx_feira_auth_dummy_lock);

    (void) argon2id_verify(hash, password, len);
}


static ngx_int_t
ngx_feira_auth_session(ngx_feira_auth_job_t *job, mongoc_client_t *client,
    const bson_oid_t *user, const char *family)
{
    bson_t               *doc;
    bson_iter_t           it;
    ngx_str_t             src, dst;
    const char           *role;
    bson_error_t          error;
    unsigned char         raw[32];
    mongoc_collection_t  *tokens;
    char                  hash[65], sub[25];

    if (family) {
        ngx_cpystrn((u_char *) job->claims.sid, (u_char *) family,
                    sizeof(job->claims.sid));

    } else if (ngx_feira_jwt_random_hex(job->claims.sid, 16) != 0) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = (u_char *) job->refresh_token;

    ngx_encode_base64url(&dst, &src);
    job->refresh_token[dst.len] = '\0';

    ngx_feira_auth_token_hash(job->refresh_token, dst.len, hash);

    doc = BCON_NEW("_id", BCON_UTF8(hash),
                   "user_id", BCON_OID(user),
                   "family_id", BCON_UTF8(job->claims.sid),
                   "status", BCON_UTF8("active"),
                   "created_at", BCON_DATE_TIME((int64_t) job->now * 1000),
                   "expires_at",
                       BCON_DATE_TIME(((int64_t) job->now
                                       + job->amcf->refresh_ttl) * 1000));

    tokens = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                          "refresh_tokens");

    if (!mongoc_collection_insert_one(tokens, doc, NULL, NULL, &error)) {
        ngx_feira_auth_unavailable(job, "insert refresh token", &error);
        bson_destroy(doc);
        mongoc_collection_destroy(tokens);
        return NGX_ERROR;
    }

    bson_destroy(doc);
    mongoc_collection_destroy(tokens);

    bson_oid_to_string(user, sub);

    role = json_string_value(json_object_get(job->user, "role"));
    if (role == NULL) {
        (void) it;
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    return ngx_feira_auth_sign(job, sub, role);
}


static ngx_int_t
ngx_feira_auth_sign(ngx_feira_auth_job_t *job, const char *sub,
    const char *role)
{
    ngx_cpystrn((u_char *) job->claims.sub, (u_char *) sub,
                sizeof(job->claims.sub));
    ngx_cpystrn((u_char *) job->claims.role, (u_char *) role,
                sizeof(job->claims.role));

    job->access_token = ngx_feira_jwt_sign(&job->amcf->jwt, &job->claims,
                                           job->now);
    if (job->access_token == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_feira_auth_token_hash(const char *token, size_t len, char *hex)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *) token, len, md);
    ngx_hex_dump((u_char *) hex, md, sizeof(md));
    hex[2 * sizeof(md)] = '\0';
}


/* the user as its owner sees it: never the password hash */

static json_t *
ngx_feira_auth_user_view(const bson_t *doc)
{
    json_t       *user;
    bson_iter_t   it;
    const char   *key;
    char          buf[32];

    user = json_object();
    if (user == NULL) {
        return NULL;
    }

    if (!bson_iter_init(&it, doc)) {
        json_decref(user);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), buf);
            json_object_set_new(user, "id", json_string(buf));

        } else if ((ngx_strcmp(key, "email") == 0
                    || ngx_strcmp(key, "name") == 0
                    || ngx_strcmp(key, "role") == 0
                    || ngx_strcmp(key, "phone") == 0)
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(user, key,
                                json_string(bson_iter_utf8(&it, NULL)));

        } else if (ngx_strcmp(key, "created_at") == 0
                   && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            ngx_feira_rfc3339(bson_iter_date_time(&it), buf, sizeof(buf));
            json_object_set_new(user, "created_at", json_string(buf));
        }
    }

    if (json_object_get(user, "id") == NULL
        || json_object_get(user, "role") == NULL)
    {
        json_decref(user);
        return NULL;
    }

    return user;
}


static void
ngx_feira_auth_unavailable(ngx_feira_auth_job_t *job, const char *what,
    bson_error_t *error)
{
    /* the driver's words go to the log, never to the client */
    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "feira: auth: %s: %s", what, error->message);

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    job->detail = "the user store is unavailable";
}
