/*
 * feira_auth: types shared by the files of the auth module.
 */

#ifndef _NGX_HTTP_FEIRA_AUTH_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_AUTH_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_jwt.h"


#define NGX_FEIRA_AUTH_EP_REGISTER   1
#define NGX_FEIRA_AUTH_EP_LOGIN      2
#define NGX_FEIRA_AUTH_EP_REFRESH    3
#define NGX_FEIRA_AUTH_EP_LOGOUT     4
#define NGX_FEIRA_AUTH_EP_ME         5
#define NGX_FEIRA_AUTH_EP_JWKS       6

/* Redis: the deny list (sorted sets scored by time) and its feed */
#define NGX_FEIRA_AUTH_DENY_JTI      "feira:auth:deny:jti"
#define NGX_FEIRA_AUTH_DENY_USER     "feira:auth:deny:user"
#define NGX_FEIRA_AUTH_CHANNEL       "feira:auth:deny"

#define NGX_FEIRA_AUTH_DENY_TOKEN    'j'
#define NGX_FEIRA_AUTH_DENY_USERS    'u'


typedef struct {
    ngx_feira_jwt_conf_t         jwt;
    ngx_str_t                    jwks;

    ngx_shm_zone_t              *shm_zone;

    ngx_str_t                    algorithm;
    ngx_str_t                    secret_file;
    ngx_str_t                    private_key;
    ngx_str_t                    public_key;
    ngx_str_t                    kid;
    ngx_str_t                    issuer;
    ngx_str_t                    audience;

    time_t                       access_ttl;
    time_t                       refresh_ttl;
    time_t                       leeway;
    ngx_msec_t                   feed_timeout;

    ngx_uint_t                   login_failures;
    time_t                       login_window;
    time_t                       login_lockout;

    uint32_t                     argon2_t;
    uint32_t                     argon2_m;
    uint32_t                     argon2_p;

    ngx_str_t                    admin_email;
    ngx_str_t                    admin_password;

    ngx_uint_t                   used;      /* a location uses auth */
    ngx_uint_t                   endpoints; /* a location serves the API */
} ngx_http_feira_auth_main_conf_t;


typedef struct {
    ngx_uint_t                   endpoint;
    ngx_array_t                 *roles;     /* of ngx_str_t; NULL: off */
    ngx_flag_t                   query_token;
} ngx_http_feira_auth_loc_conf_t;


extern ngx_module_t  ngx_http_feira_auth_module;


/* ngx_feira_auth_keys.c */
char *ngx_feira_auth_load_keys(ngx_conf_t *cf,
    ngx_http_feira_auth_main_conf_t *amcf);

/* ngx_feira_auth_zone.c: the deny list and the login limiter */
void *ngx_feira_auth_zone_ctx(ngx_pool_t *pool);
ngx_int_t ngx_feira_auth_zone_init(ngx_shm_zone_t *shm_zone, void *data);
void ngx_feira_auth_deny_add(ngx_shm_zone_t *zone, u_char type,
    u_char *key, size_t len, time_t value, time_t expire);
ngx_int_t ngx_feira_auth_deny_check(ngx_shm_zone_t *zone,
    ngx_feira_jwt_claims_t *claims);
time_t ngx_feira_auth_limit_check(ngx_shm_zone_t *zone, ngx_str_t *key);
time_t ngx_feira_auth_limit_fail(ngx_shm_zone_t *zone, ngx_str_t *key,
    ngx_http_feira_auth_main_conf_t *amcf);
void ngx_feira_auth_limit_reset(ngx_shm_zone_t *zone, ngx_str_t *key);

/* ngx_feira_auth_feed.c: the deny list over Redis, in every instance */
ngx_int_t ngx_feira_auth_feed_init(ngx_cycle_t *cycle,
    ngx_http_feira_auth_main_conf_t *amcf);
void ngx_feira_auth_feed_exit(void);
ngx_int_t ngx_feira_auth_feed_ok(void);

typedef void (*ngx_feira_auth_deny_pt)(void *data, ngx_int_t rc);

ngx_int_t ngx_feira_auth_deny_publish(u_char type, const char *key,
    time_t value, ngx_feira_auth_deny_pt handler, void *data);

/* ngx_feira_auth_access.c */
ngx_int_t ngx_feira_auth_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_feira_auth_authenticate(ngx_http_request_t *r,
    ngx_http_feira_auth_loc_conf_t *alcf, const char **detail);
ngx_int_t ngx_feira_auth_send_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail);

/* ngx_feira_auth_handlers.c */
ngx_int_t ngx_feira_auth_endpoint_handler(ngx_http_request_t *r);

/* ngx_feira_auth_store.c: the jobs that run in the thread pool */

typedef struct {
    ngx_http_feira_auth_main_conf_t  *amcf;

    /* in: strings of the request body, alive as long as the request */
    const char                       *email;
    const char                       *email_lc;
    const char                       *password;
    size_t                            password_len;
    const char                       *name;
    const char                       *role;
    const char                       *phone;
    const char                       *refresh;
    size_t                            refresh_len;
    const char                       *user_id;
    const char                       *sid;
    time_t                            now;

    /* out */
    ngx_uint_t                        status;
    const char                       *detail;
    json_t                           *user;
    char                             *access_token;   /* malloc()ed */
    char                              refresh_token[48];
    ngx_feira_jwt_claims_t            claims;
    unsigned                          reused:1;
} ngx_feira_auth_job_t;

void ngx_feira_auth_register_job(void *data);
void ngx_feira_auth_login_job(void *data);
void ngx_feira_auth_refresh_job(void *data);
void ngx_feira_auth_logout_job(void *data);
void ngx_feira_auth_me_job(void *data);
void ngx_feira_auth_store_start(ngx_cycle_t *cycle,
    ngx_http_feira_auth_main_conf_t *amcf);


#endif /* _NGX_HTTP_FEIRA_AUTH_MODULE_H_INCLUDED_ */
