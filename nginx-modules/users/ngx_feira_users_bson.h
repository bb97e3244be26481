/*
 * feira_users: stored documents to JSON views (allow-lists: a password
 * hash never leaves) and checked JSON bodies to MongoDB updates.
 *
 * libbson and jansson only, so that the C unit tests can link it alone.
 */

#ifndef _NGX_FEIRA_USERS_BSON_H_INCLUDED_
#define _NGX_FEIRA_USERS_BSON_H_INCLUDED_


#include <stdint.h>
#include <bson/bson.h>
#include <jansson.h>


bson_t *ngx_feira_users_patch_update(const json_t *body, int64_t now_ms);
bson_t *ngx_feira_users_preferences_update(const json_t *body,
    int64_t now_ms);

json_t *ngx_feira_users_profile_view(const bson_t *doc, int private_view,
    int64_t rating_count, int64_t rating_sum);
json_t *ngx_feira_users_preferences_view(const bson_t *user);
json_t *ngx_feira_users_device_view(const bson_t *doc);
json_t *ngx_feira_users_review_view(const bson_t *doc);

void ngx_feira_users_time(int64_t ms, char *buf, size_t len);


#endif /* _NGX_FEIRA_USERS_BSON_H_INCLUDED_ */
