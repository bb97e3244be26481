/*
 * feira_users: pure checks of what clients send (paths and JSON bodies).
 *
 * No nginx dependency, so that the C unit tests can link it alone.
 */

#ifndef _NGX_FEIRA_USERS_INPUT_H_INCLUDED_
#define _NGX_FEIRA_USERS_INPUT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_feira_validate.h"


/* the resources under a feira_users location, after its prefix */
typedef enum {
    NGX_FEIRA_USERS_NONE = 0,
    NGX_FEIRA_USERS_PROFILE,         /* {id} */
    NGX_FEIRA_USERS_PREFERENCES,     /* {id}/preferences */
    NGX_FEIRA_USERS_DEVICES,         /* {id}/devices */
    NGX_FEIRA_USERS_DEVICE,          /* {id}/devices/{device_id} */
    NGX_FEIRA_USERS_REVIEWS          /* {id}/reviews */
} ngx_feira_users_route_e;


typedef struct {
    ngx_feira_users_route_e   route;
    const char               *id;
    size_t                    id_len;
    const char               *item;       /* the device id */
    size_t                    item_len;
} ngx_feira_users_path_t;


#define NGX_FEIRA_USERS_NAME_MAX      100
#define NGX_FEIRA_USERS_BIO_MAX       500
#define NGX_FEIRA_USERS_URL_MAX       2048
#define NGX_FEIRA_USERS_SKILLS_MAX    20
#define NGX_FEIRA_USERS_SKILL_MAX     50
#define NGX_FEIRA_USERS_TOKEN_MAX     1024


int ngx_feira_users_parse_path(const char *p, size_t len,
    ngx_feira_users_path_t *path);
int ngx_feira_users_parent_segment(const char *p, size_t len,
    const char **seg, size_t *seg_len);

int ngx_feira_users_patch_check(const json_t *body, int *provider_only,
    ngx_feira_errors_t *errs);
int ngx_feira_users_preferences_check(const json_t *body,
    ngx_feira_errors_t *errs);
int ngx_feira_users_device_check(const json_t *body,
    ngx_feira_errors_t *errs);
int ngx_feira_users_review_check(const json_t *body, size_t comment_max,
    ngx_feira_errors_t *errs);

int ngx_feira_users_is_hhmm(const char *s, size_t len);
int ngx_feira_users_is_tz(const char *s, size_t len);
int ngx_feira_users_is_url(const char *s, size_t len);


#endif /* _NGX_FEIRA_USERS_INPUT_H_INCLUDED_ */
