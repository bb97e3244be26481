/*
 * feira_users: what is stored and what is shown.  Every view is built from
 * an explicit allow-list of fields, never by copying a stored document, so
 * that password_hash, email_lc and anything added later stay inside.
 */

#include <string.h>
#include <time.h>

#include "ngx_feira_users_bson.h"


static int ngx_feira_users_set(json_t *obj, const char *key, json_t *value);
static int ngx_feira_users_copy_oid(json_t *obj, const char *name,
    const bson_t *doc, const char *key, int required);
static int ngx_feira_users_copy_utf8(json_t *obj, const char *name,
    const bson_t *doc, const char *key, int required);
static int ngx_feira_users_copy_time(json_t *obj, const bson_t *doc,
    const char *key);
static json_t *ngx_feira_users_area_view(const bson_t *doc);
static json_t *ngx_feira_users_skills_view(const bson_t *doc);
static int ngx_feira_users_append(bson_t *set, const char *key,
    const json_t *v);


/* the fields a PATCH may set; the body was checked against the same list */
static const char *const  ngx_feira_users_editable[] = {
    "name", "bio", "phone", "avatar_url", "skills", "service_area", NULL
};


/* {$set: {<sent fields>, updated_at}, $unset: {<fields sent as null>}} */

bson_t *
ngx_feira_users_patch_update(const json_t *body, int64_t now_ms)
{
    int                 unset;
    bson_t             *update, set, del;
    json_t             *v;
    const char *const  *key;

    update = bson_new();
    unset = 0;

    if (!BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set)) {
        goto failed;
    }

    for (key = ngx_feira_users_editable; *key != NULL; key++) {
        v = json_object_get(body, *key);

        if (v == NULL) {
            continue;
        }

        if (json_is_null(v)) {
            unset++;
            continue;
        }

        if (ngx_feira_users_append(&set, *key, v) != 0) {
            bson_append_document_end(update, &set);
            goto failed;
        }
    }

    if (!BSON_APPEND_DATE_TIME(&set, "updated_at", now_ms)
        || !bson_append_document_end(update, &set))
    {
        goto failed;
    }

    /* an empty $unset is an error on older servers: only when needed */

    if (unset) {
        if (!BSON_APPEND_DOCUMENT_BEGIN(update, "$unset", &del)) {
            goto failed;
        }

        for (key = ngx_feira_users_editable; *key != NULL; key++) {
            v = json_object_get(body, *key);

            if (v != NULL && json_is_null(v)
                && !BSON_APPEND_UTF8(&del, *key, ""))
            {
                bson_append_document_end(update, &del);
                goto failed;
            }
        }

        if (!bson_append_document_end(update, &del)) {
            goto failed;
        }
    }

    return update;

failed:

    bson_destroy(update);
    return NULL;
}


/* {$set: {preferences: {notifications, language, quiet_hours?}, ...}} */

bson_t *
ngx_feira_users_preferences_update(const json_t *body, int64_t now_ms)
{
    bson_t       *update, set, prefs, sub;
    json_t       *n, *q;
    const char   *channels[] = { "email", "sms", "push" };
    const char   *times[] = { "start", "end", "tz" };
    unsigned int  i;

    n = json_object_get(body, "notifications");
    q = json_object_get(body, "quiet_hours");

    update = bson_new();

    if (!BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set)) {
        goto failed;
    }

    if (!BSON_APPEND_DOCUMENT_BEGIN(&set, "preferences", &prefs)) {
        goto failed;
    }

    if (!BSON_APPEND_DOCUMENT_BEGIN(&prefs, "notifications", &sub)) {
        goto failed;
    }

    for (i = 0; i < 3; i++) {
        if (!BSON_APPEND_BOOL(&sub, channels[i],
                              json_is_true(json_object_get(n, channels[i]))))
        {
            goto failed;
        }
    }

    if (!bson_append_document_end(&prefs, &sub)
        || !BSON_APPEND_UTF8(&prefs, "language",
                             json_string_value(json_object_get(body,
                                                               "language"))))
    {
        goto failed;
    }

    if (json_is_object(q)) {
        if (!BSON_APPEND_DOCUMENT_BEGIN(&prefs, "quiet_hours", &sub)) {
            goto failed;
        }

        for (i = 0; i < 3; i++) {
            if (!BSON_APPEND_UTF8(&sub, times[i],
                                  json_string_value(json_object_get(q,
                                                                times[i]))))
            {
                goto failed;
            }
        }

        if (!bson_append_document_end(&prefs, &sub)) {
            goto failed;
        }
    }

    if (!bson_append_document_end(&set, &prefs)
        || !BSON_APPEND_DATE_TIME(&set, "updated_at", now_ms)
        || !bson_append_document_end(update, &set))
    {
        goto failed;
    }

    return update;

failed:

    /* an unfinished child leaves the parent unusable: only destroyed */
    bson_destroy(update);
    return NULL;
}


/*
 * The profile: public fields to anyone; e-mail and phone only when
 * private_view.  The rating comes from the reviews ledger (see
 * ngx_feira_users_reviews_store.c), not from the cached copy in the
 * user document.
 */

json_t *
ngx_feira_users_profile_view(const bson_t *doc, int private_view,
    int64_t rating_count, int64_t rating_sum)
{
    int             ok;
    bson_t          area;
    json_t         *user, *v;
    uint32_t        len;
    bson_iter_t     it;
    const uint8_t  *data;

    user = json_object();
    if (user == NULL) {
        return NULL;
    }

    ok = ngx_feira_users_copy_oid(user, "id", doc, "_id", 1) == 0
         && ngx_feira_users_copy_utf8(user, "name", doc, "name", 0) == 0
         && ngx_feira_users_copy_utf8(user, "role", doc, "role", 1) == 0
         && ngx_feira_users_copy_utf8(user, "bio", doc, "bio", 0) == 0
         && ngx_feira_users_copy_utf8(user, "avatar_url", doc, "avatar_url",
                                      0) == 0
         && ngx_feira_users_set(user, "rating_avg",
                                json_real(rating_count > 0
                                          ? (double) rating_sum
                                            / (double) rating_count
                                          : 0.0)) == 0
         && ngx_feira_users_set(user, "rating_count",
                                json_integer(rating_count)) == 0
         && ngx_feira_users_copy_time(user, doc, "created_at") == 0;

    if (ok && strcmp(json_string_value(json_object_get(user, "role")),
                     "provider") == 0)
    {
        v = ngx_feira_users_skills_view(doc);
        ok = v != NULL && ngx_feira_users_set(user, "skills", v) == 0;

        if (ok) {
            v = NULL;

            if (bson_iter_init_find(&it, doc, "service_area")
                && BSON_ITER_HOLDS_DOCUMENT(&it))
            {
                bson_iter_document(&it, &len, &data);

                if (bson_init_static(&area, data, len)) {
                    v = ngx_feira_users_area_view(&area);
                }
            }

            ok = ngx_feira_users_set(user, "service_area",
                                     v ? v : json_null()) == 0;
        }
    }

    if (ok && private_view) {
        ok = ngx_feira_users_copy_utf8(user, "email", doc, "email", 0) == 0
             && ngx_feira_users_copy_utf8(user, "phone", doc, "phone", 0)
                == 0;
    }

    if (!ok) {
        json_decref(user);
        return NULL;
    }

    return user;
}


/* what is stored, with the defaults of docs/events.md for what is not */

json_t *
ngx_feira_users_preferences_view(const bson_t *user)
{
    int           email, sms, push;
    json_t       *view, *quiet;
    uint32_t      len;
    const char   *language, *key;
    bson_iter_t   it, sub, ch;

    email = 1;
    sms = 0;
    push = 1;
    language = "pt-BR";
    quiet = NULL;

    if (bson_iter_init_find(&it, user, "preferences")
        && BSON_ITER_HOLDS_DOCUMENT(&it)
        && bson_iter_recurse(&it, &sub))
    {
        while (bson_iter_next(&sub)) {
            key = bson_iter_key(&sub);

            if (strcmp(key, "language") == 0 && BSON_ITER_HOLDS_UTF8(&sub)) {
                language = bson_iter_utf8(&sub, &len);

            } else if (strcmp(key, "notifications") == 0
                       && BSON_ITER_HOLDS_DOCUMENT(&sub)
                       && bson_iter_recurse(&sub, &ch))
            {
                while (bson_iter_next(&ch)) {
                    if (!BSON_ITER_HOLDS_BOOL(&ch)) {
                        continue;
                    }

                    if (strcmp(bson_iter_key(&ch), "email") == 0) {
                        email = bson_iter_bool(&ch);

                    } else if (strcmp(bson_iter_key(&ch), "sms") == 0) {
                        sms = bson_iter_bool(&ch);

                    } else if (strcmp(bson_iter_key(&ch), "push") == 0) {
                        push = bson_iter_bool(&ch);
                    }
                }

            } else if (strcmp(key, "quiet_hours") == 0
                       && BSON_ITER_HOLDS_DOCUMENT(&sub)
                       && bson_iter_recurse(&sub, &ch)
                       && quiet == NULL)
            {
                quiet = json_object();
                if (quiet == NULL) {
                    return NULL;
                }

                while (bson_iter_next(&ch)) {
                    key = bson_iter_key(&ch);

                    if ((strcmp(key, "start") == 0 || strcmp(key, "end") == 0
                         || strcmp(key, "tz") == 0)
                        && BSON_ITER_HOLDS_UTF8(&ch)
                        && ngx_feira_users_set(quiet, key,
                               json_string(bson_iter_utf8(&ch, NULL))) != 0)
                    {
                        json_decref(quiet);
                        return NULL;
                    }
                }
            }
        }
    }

    view = json_pack("{s:{s:b, s:b, s:b}, s:s, s:o}",
                     "notifications",
                         "email", email, "sms", sms, "push", push,
                     "language", language,
                     "quiet_hours", quiet ? quiet : json_null());

    return view;
}


json_t *
ngx_feira_users_device_view(const bson_t *doc)
{
    json_t  *device;

    device = json_object();
    if (device == NULL) {
        return NULL;
    }

    if (ngx_feira_users_copy_oid(device, "id", doc, "_id", 1) != 0
        || ngx_feira_users_copy_utf8(device, "platform", doc, "platform", 1)
           != 0
        || ngx_feira_users_copy_utf8(device, "token", doc, "token", 1) != 0
        || ngx_feira_users_copy_time(device, doc, "created_at") != 0)
    {
        json_decref(device);
        return NULL;
    }

    return device;
}


json_t *
ngx_feira_users_review_view(const bson_t *doc)
{
    json_t       *review;
    bson_iter_t   it;

    review = json_object();
    if (review == NULL) {
        return NULL;
    }

    if (ngx_feira_users_copy_oid(review, "id", doc, "_id", 1) != 0
        || ngx_feira_users_copy_oid(review, "request_id", doc, "request_id",
                                    1) != 0
        || ngx_feira_users_copy_oid(review, "reviewer_id", doc,
                                    "reviewer_id", 1) != 0
        || ngx_feira_users_copy_oid(review, "reviewee_id", doc,
                                    "reviewee_id", 1) != 0
        || ngx_feira_users_copy_utf8(review, "reviewer_role", doc,
                                     "reviewer_role", 0) != 0
        || !bson_iter_init_find(&it, doc, "rating")
        || !BSON_ITER_HOLDS_NUMBER(&it)
        || ngx_feira_users_set(review, "rating",
                               json_integer(bson_iter_as_int64(&it))) != 0
        || ngx_feira_users_copy_utf8(review, "comment", doc, "comment", 0)
           != 0
        || ngx_feira_users_copy_time(review, doc, "created_at") != 0)
    {
        json_decref(review);
        return NULL;
    }

    return review;
}


/* RFC 3339, UTC, whole seconds */

void
ngx_feira_users_time(int64_t ms, char *buf, size_t len)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);

    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        buf[0] = '\0';
    }
}


static int
ngx_feira_users_set(json_t *obj, const char *key, json_t *value)
{
    /* json_object_set_new() takes the reference even when it fails */
    return value == NULL ? -1 : json_object_set_new(obj, key, value);
}


/* a missing optional field is shown as null: views keep one shape */

static int
ngx_feira_users_copy_oid(json_t *obj, const char *name, const bson_t *doc,
    const char *key, int required)
{
    char         hex[25];
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), hex);
        return ngx_feira_users_set(obj, name, json_string(hex));
    }

    return required ? -1 : ngx_feira_users_set(obj, name, json_null());
}


static int
ngx_feira_users_copy_utf8(json_t *obj, const char *name, const bson_t *doc,
    const char *key, int required)
{
    uint32_t      len;
    const char   *s;
    bson_iter_t   it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
        s = bson_iter_utf8(&it, &len);
        return ngx_feira_users_set(obj, name, json_stringn(s, len));
    }

    return required ? -1 : ngx_feira_users_set(obj, name, json_null());
}


static int
ngx_feira_users_copy_time(json_t *obj, const bson_t *doc, const char *key)
{
    char         buf[32];
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        ngx_feira_users_time(bson_iter_date_time(&it), buf, sizeof(buf));
        return ngx_feira_users_set(obj, key, json_string(buf));
    }

    return ngx_feira_users_set(obj, key, json_null());
}


static json_t *
ngx_feira_users_skills_view(const bson_t *doc)
{
    json_t       *skills;
    bson_iter_t   it, sub;

    skills = json_array();
    if (skills == NULL) {
        return NULL;
    }

    if (bson_iter_init_find(&it, doc, "skills")
        && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &sub))
    {
        while (bson_iter_next(&sub)) {
            if (BSON_ITER_HOLDS_UTF8(&sub)
                && json_array_append_new(skills,
                                    json_string(bson_iter_utf8(&sub, NULL)))
                   != 0)
            {
                json_decref(skills);
                return NULL;
            }
        }
    }

    return skills;
}


static json_t *
ngx_feira_users_area_view(const bson_t *doc)
{
    json_t       *area;
    bson_iter_t   it;
    const char   *keys[] = { "lat", "lng", "radius_km" };
    unsigned int  i;

    area = json_object();
    if (area == NULL) {
        return NULL;
    }

    if (bson_iter_init_find(&it, doc, "label") && BSON_ITER_HOLDS_UTF8(&it)
        && ngx_feira_users_set(area, "label",
                               json_string(bson_iter_utf8(&it, NULL))) != 0)
    {
        json_decref(area);
        return NULL;
    }

    for (i = 0; i < 3; i++) {
        if (!bson_iter_init_find(&it, doc, keys[i])
            || !BSON_ITER_HOLDS_NUMBER(&it)
            || ngx_feira_users_set(area, keys[i],
                                   json_real(bson_iter_as_double(&it))) != 0)
        {
            json_decref(area);
            return NULL;
        }
    }

    return area;
}


static int
ngx_feira_users_append(bson_t *set, const char *key, const json_t *v)
{
    bson_t        child;
    size_t        i;
    json_t       *item;
    const char   *k;
    char          idx[16];
    const char   *nums[] = { "lat", "lng", "radius_km" };
    unsigned int  n;

    if (json_is_string(v)) {
        return bson_append_utf8(set, key, -1, json_string_value(v),
                                (int) json_string_length(v)) ? 0 : -1;
    }

    if (strcmp(key, "skills") == 0 && json_is_array(v)) {
        if (!BSON_APPEND_ARRAY_BEGIN(set, key, &child)) {
            return -1;
        }

        json_array_foreach(v, i, item) {
            bson_uint32_to_string((uint32_t) i, &k, idx, sizeof(idx));

            if (!bson_append_utf8(&child, k, -1, json_string_value(item),
                                  (int) json_string_length(item)))
            {
                bson_append_array_end(set, &child);
                return -1;
            }
        }

        return bson_append_array_end(set, &child) ? 0 : -1;
    }

    if (strcmp(key, "service_area") == 0 && json_is_object(v)) {
        if (!BSON_APPEND_DOCUMENT_BEGIN(set, key, &child)) {
            return -1;
        }

        item = json_object_get(v, "label");

        if (json_is_string(item)
            && !BSON_APPEND_UTF8(&child, "label", json_string_value(item)))
        {
            bson_append_document_end(set, &child);
            return -1;
        }

        for (n = 0; n < 3; n++) {
            if (!BSON_APPEND_DOUBLE(&child, nums[n],
                                    json_number_value(json_object_get(v,
                                                                nums[n]))))
            {
                bson_append_document_end(set, &child);
                return -1;
            }
        }

        return bson_append_document_end(set, &child) ? 0 : -1;
    }

    /* a type the checks would have refused: refuse it here too */
    return -1;
}
