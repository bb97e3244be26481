/*
 * feira_users: what a client may send.  The path after the location, and
 * the bodies of PATCH (an allow-list of editable fields), PUT preferences,
 * POST devices and POST reviews; every string bounded, no operator anywhere.
 */

#include <stdio.h>
#include <string.h>

#include "ngx_feira_users_input.h"


static int ngx_feira_users_segment_is(const char *seg, size_t len,
    const char *name);
static int ngx_feira_users_is_protected(const char *key);
static int ngx_feira_users_has_error(ngx_feira_errors_t *errs, size_t from,
    const char *field);
static void ngx_feira_users_nested(const json_t *obj, const char *name,
    const ngx_feira_field_t *fields, ngx_feira_errors_t *errs);
static void ngx_feira_users_check_skills(const json_t *skills,
    ngx_feira_errors_t *errs);
static void ngx_feira_users_check_quiet(const json_t *quiet,
    ngx_feira_errors_t *errs);


/* what a PATCH may never touch: named, so that the answer says why */
static const char *const  ngx_feira_users_protected[] = {
    "_id", "id", "email", "email_lc", "password", "password_hash", "role",
    "rating_avg", "rating_count", "rating_sum", "preferences",
    "created_at", "updated_at", NULL
};


static const ngx_feira_field_t  ngx_feira_users_patch_fields[] = {
    { "name", NGX_FEIRA_STRING, 0, 1, NGX_FEIRA_USERS_NAME_MAX, 0, -1, NULL },
    { "bio", NGX_FEIRA_STRING, 0, 0, NGX_FEIRA_USERS_BIO_MAX, 0, -1, NULL },
    { "phone", NGX_FEIRA_STRING, 0, 7, 20, 0, -1, NULL },
    { "avatar_url", NGX_FEIRA_STRING, 0, 1, NGX_FEIRA_USERS_URL_MAX, 0, -1,
      NULL },
    { "skills", NGX_FEIRA_ARRAY, 0, 0, NGX_FEIRA_USERS_SKILLS_MAX, 0, -1,
      NULL },
    { "service_area", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


/* a provider's area: a circle, with an optional name for people */
static const ngx_feira_field_t  ngx_feira_users_area_fields[] = {
    { "label", NGX_FEIRA_STRING, 0, 1, 100, 0, -1, NULL },
    { "lat", NGX_FEIRA_NUMBER, 1, 0, 0, -90, 90, NULL },
    { "lng", NGX_FEIRA_NUMBER, 1, 0, 0, -180, 180, NULL },
    { "radius_km", NGX_FEIRA_NUMBER, 1, 0, 0, 0.1, 500, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const char *const  ngx_feira_users_languages[] = {
    "pt-BR", "en", NULL
};


static const ngx_feira_field_t  ngx_feira_users_preferences_fields[] = {
    { "notifications", NGX_FEIRA_OBJECT, 1, 0, 0, 0, -1, NULL },
    { "language", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1,
      ngx_feira_users_languages },
    { "quiet_hours", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_users_channels_fields[] = {
    { "email", NGX_FEIRA_BOOLEAN, 1, 0, 0, 0, -1, NULL },
    { "sms", NGX_FEIRA_BOOLEAN, 1, 0, 0, 0, -1, NULL },
    { "push", NGX_FEIRA_BOOLEAN, 1, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_users_quiet_fields[] = {
    { "start", NGX_FEIRA_STRING, 1, 5, 5, 0, -1, NULL },
    { "end", NGX_FEIRA_STRING, 1, 5, 5, 0, -1, NULL },
    { "tz", NGX_FEIRA_STRING, 1, 1, 64, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const char *const  ngx_feira_users_platforms[] = {
    "android", "ios", "web", NULL
};


static const ngx_feira_field_t  ngx_feira_users_device_fields[] = {
    { "platform", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1, ngx_feira_users_platforms },
    { "token", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_USERS_TOKEN_MAX, 0, -1,
      NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


/*
 * "{id}", "{id}/preferences", "{id}/devices", "{id}/devices/{device_id}"
 * or "{id}/reviews": 0 and the route, or -1 for anything else.  The ids
 * are checked by the caller, which answers 400 rather than 404 for them.
 */

int
ngx_feira_users_parse_path(const char *p, size_t len,
    ngx_feira_users_path_t *path)
{
    size_t       i, n, start, seg_len[3];
    const char  *seg[3];

    memset(path, 0, sizeof(ngx_feira_users_path_t));

    n = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') {
            continue;
        }

        /* no empty segment, no trailing slash, at most three segments */
        if (i == start || n == 3) {
            return -1;
        }

        seg[n] = p + start;
        seg_len[n] = i - start;
        n++;

        start = i + 1;
    }

    if (n == 0) {
        return -1;
    }

    path->id = seg[0];
    path->id_len = seg_len[0];

    if (n == 1) {
        path->route = NGX_FEIRA_USERS_PROFILE;
        return 0;
    }

    if (n == 2) {
        if (ngx_feira_users_segment_is(seg[1], seg_len[1], "preferences")) {
            path->route = NGX_FEIRA_USERS_PREFERENCES;

        } else if (ngx_feira_users_segment_is(seg[1], seg_len[1], "devices"))
        {
            path->route = NGX_FEIRA_USERS_DEVICES;

        } else if (ngx_feira_users_segment_is(seg[1], seg_len[1], "reviews"))
        {
            path->route = NGX_FEIRA_USERS_REVIEWS;

        } else {
            return -1;
        }

        return 0;
    }

    if (!ngx_feira_users_segment_is(seg[1], seg_len[1], "devices")) {
        return -1;
    }

    path->route = NGX_FEIRA_USERS_DEVICE;
    path->item = seg[2];
    path->item_len = seg_len[2];

    return 0;
}


/*
 * The segment before the last one: the request id of
 * ".../requests/{id}/reviews", whatever the location's pattern is.
 */

int
ngx_feira_users_parent_segment(const char *p, size_t len, const char **seg,
    size_t *seg_len)
{
    size_t  last, start;

    if (len == 0 || p[len - 1] == '/') {
        return -1;
    }

    for (last = len; last > 0 && p[last - 1] != '/'; last--) {
        /* void */
    }

    if (last == 0) {
        return -1;
    }

    /* p[last - 1] is the slash before the last segment */

    for (start = last - 1; start > 0 && p[start - 1] != '/'; start--) {
        /* void */
    }

    if (start == last - 1) {
        return -1;
    }

    *seg = p + start;
    *seg_len = last - 1 - start;

    return 0;
}


/*
 * PATCH of a profile: only the allow-listed fields; protected ones are
 * named as such.  null removes an optional field (but not the name).
 * *provider_only is set when skills or service_area are sent.
 */

int
ngx_feira_users_patch_check(const json_t *body, int *provider_only,
    ngx_feira_errors_t *errs)
{
    size_t       before;
    json_t      *copy, *v;
    const char  *key;

    before = errs->n;
    *provider_only = 0;

    if (!json_is_object(body)) {
        ngx_feira_errors_add(errs, "", "must be a JSON object");
        return -1;
    }

    if (json_object_size(body) == 0) {
        ngx_feira_errors_add(errs, "", "names no field to change");
        return -1;
    }

    /* a shallow copy without the protected keys, for the generic check */
    copy = json_copy((json_t *) body);
    if (copy == NULL) {
        ngx_feira_errors_add(errs, "", "cannot be checked");
        return -1;
    }

    json_object_foreach((json_t *) body, key, v) {
        if (ngx_feira_users_is_protected(key)) {
            ngx_feira_errors_add(errs, key, "may not be changed");
            json_object_del(copy, key);
        }
    }

    (void) ngx_feira_validate_object(copy, ngx_feira_users_patch_fields,
                                     errs);
    json_decref(copy);

    v = json_object_get(body, "name");
    if (v != NULL && json_is_null(v)) {
        ngx_feira_errors_add(errs, "name", "may not be null");
    }

    v = json_object_get(body, "phone");
    if (json_is_string(v)
        && !ngx_feira_users_has_error(errs, before, "phone")
        && !ngx_feira_is_phone(json_string_value(v), json_string_length(v)))
    {
        ngx_feira_errors_add(errs, "phone", "is not a valid phone number");
    }

    v = json_object_get(body, "avatar_url");
    if (json_is_string(v)
        && !ngx_feira_users_has_error(errs, before, "avatar_url")
        && !ngx_feira_users_is_url(json_string_value(v),
                                   json_string_length(v)))
    {
        ngx_feira_errors_add(errs, "avatar_url", "must be an https:// URL");
    }

    v = json_object_get(body, "skills");
    if (json_is_array(v)
        && !ngx_feira_users_has_error(errs, before, "skills"))
    {
        ngx_feira_users_check_skills(v, errs);
    }

    v = json_object_get(body, "service_area");
    if (json_is_object(v)
        && !ngx_feira_users_has_error(errs, before, "service_area"))
    {
        ngx_feira_users_nested(v, "service_area",
                               ngx_feira_users_area_fields, errs);
    }

    if (json_object_get(body, "skills") != NULL
        || json_object_get(body, "service_area") != NULL)
    {
        *provider_only = 1;
    }

    return errs->n == before ? 0 : -1;
}


/* PUT preferences: the whole document, as docs/events.md defines it */

int
ngx_feira_users_preferences_check(const json_t *body,
    ngx_feira_errors_t *errs)
{
    size_t   before;
    json_t  *v;

    before = errs->n;

    if (ngx_feira_validate_object(body, ngx_feira_users_preferences_fields,
                                  errs)
        != 0
        && !json_is_object(body))
    {
        return -1;
    }

    v = json_object_get(body, "notifications");
    if (json_is_object(v)
        && !ngx_feira_users_has_error(errs, before, "notifications"))
    {
        ngx_feira_users_nested(v, "notifications",
                               ngx_feira_users_channels_fields, errs);
    }

    v = json_object_get(body, "quiet_hours");
    if (json_is_object(v)
        && !ngx_feira_users_has_error(errs, before, "quiet_hours"))
    {
        ngx_feira_users_check_quiet(v, errs);
    }

    return errs->n == before ? 0 : -1;
}


int
ngx_feira_users_device_check(const json_t *body, ngx_feira_errors_t *errs)
{
    size_t       i, len, before;
    json_t      *v;
    const char  *s;

    before = errs->n;

    if (ngx_feira_validate_object(body, ngx_feira_users_device_fields, errs)
        != 0)
    {
        return -1;
    }

    /* push tokens are printable ASCII without spaces */

    v = json_object_get(body, "token");
    s = json_string_value(v);
    len = json_string_length(v);

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f) {
            ngx_feira_errors_add(errs, "token",
                                 "must be printable ASCII without spaces");
            break;
        }
    }

    return errs->n == before ? 0 : -1;
}


int
ngx_feira_users_review_check(const json_t *body, size_t comment_max,
    ngx_feira_errors_t *errs)
{
    ngx_feira_field_t  fields[3];

    memset(fields, 0, sizeof(fields));

    fields[0].name = "rating";
    fields[0].type = NGX_FEIRA_INTEGER;
    fields[0].required = 1;
    fields[0].min = 1;
    fields[0].max = 5;

    fields[1].name = "comment";
    fields[1].type = NGX_FEIRA_STRING;
    fields[1].min_len = 0;
    fields[1].max_len = comment_max;
    fields[1].min = 0;
    fields[1].max = -1;

    return ngx_feira_validate_object(body, fields, errs);
}


int
ngx_feira_users_is_hhmm(const char *s, size_t len)
{
    int  h, m;

    if (len != 5 || s[2] != ':') {
        return 0;
    }

    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9'
        || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
    {
        return 0;
    }

    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');

    return h <= 23 && m <= 59;
}


/*
 * An IANA zone name by its shape ("UTC", "America/Sao_Paulo",
 * "Etc/GMT+3"); whether the zone exists is the notification worker's
 * business, it has the zone database.
 */

int
ngx_feira_users_is_tz(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > 64) {
        return 0;
    }

    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
            || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'
            || s[i] == '+')
        {
            continue;
        }

        if (s[i] == '/' && s[i - 1] != '/' && i + 1 < len) {
            continue;
        }

        return 0;
    }

    return 1;
}


/* https://host[...], printable, nothing a page could be tricked with */

int
ngx_feira_users_is_url(const char *s, size_t len)
{
    size_t  i;

    if (len <= sizeof("https://") - 1 || strncmp(s, "https://", 8) != 0) {
        return 0;
    }

    if (!((s[8] >= 'a' && s[8] <= 'z') || (s[8] >= 'A' && s[8] <= 'Z')
          || (s[8] >= '0' && s[8] <= '9')))
    {
        return 0;
    }

    for (i = 8; i < len; i++) {
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f
            || s[i] == '"' || s[i] == '<' || s[i] == '>' || s[i] == '\\'
            || s[i] == '`')
        {
            return 0;
        }
    }

    return 1;
}


static int
ngx_feira_users_segment_is(const char *seg, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(seg, name, len) == 0;
}


static int
ngx_feira_users_is_protected(const char *key)
{
    const char *const  *p;

    for (p = ngx_feira_users_protected; *p != NULL; p++) {
        if (strcmp(*p, key) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
ngx_feira_users_has_error(ngx_feira_errors_t *errs, size_t from,
    const char *field)
{
    size_t  i, len;

    len = strlen(field);

    for (i = from; i < errs->n; i++) {
        if (strncmp(errs->items[i].field, field, len) == 0
            && (errs->items[i].field[len] == '\0'
                || errs->items[i].field[len] == '.'))
        {
            return 1;
        }
    }

    return 0;
}


/* errors of a nested object are named "<name>.<field>" */

static void
ngx_feira_users_nested(const json_t *obj, const char *name,
    const ngx_feira_field_t *fields, ngx_feira_errors_t *errs)
{
    size_t              i;
    char                field[64];
    ngx_feira_errors_t  sub;

    memset(&sub, 0, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(obj, fields, &sub) == 0) {
        return;
    }

    for (i = 0; i < sub.n; i++) {
        snprintf(field, sizeof(field), "%s%s%s", name,
                 sub.items[i].field[0] ? "." : "", sub.items[i].field);
        ngx_feira_errors_add(errs, field, sub.items[i].message);
    }
}


static void
ngx_feira_users_check_skills(const json_t *skills, ngx_feira_errors_t *errs)
{
    size_t       i, len;
    json_t      *v;
    const char  *s;

    json_array_foreach(skills, i, v) {
        if (!json_is_string(v)) {
            ngx_feira_errors_add(errs, "skills", "items must be strings");
            return;
        }

        s = json_string_value(v);
        len = json_string_length(v);

        if (memchr(s, '\0', len) != NULL) {
            ngx_feira_errors_add(errs, "skills", "must not contain NUL");
            return;
        }

        len = ngx_feira_utf8_length(s, len);

        if (len < 1 || len > NGX_FEIRA_USERS_SKILL_MAX) {
            ngx_feira_errors_add(errs, "skills",
                                 "items must have 1 to 50 characters");
            return;
        }
    }
}


static void
ngx_feira_users_check_quiet(const json_t *quiet, ngx_feira_errors_t *errs)
{
    size_t   before;
    json_t  *start, *end, *tz;

    before = errs->n;

    ngx_feira_users_nested(quiet, "quiet_hours", ngx_feira_users_quiet_fields,
                           errs);

    if (errs->n != before) {
        return;
    }

    start = json_object_get(quiet, "start");
    end = json_object_get(quiet, "end");
    tz = json_object_get(quiet, "tz");

    if (!ngx_feira_users_is_hhmm(json_string_value(start),
                                 json_string_length(start)))
    {
        ngx_feira_errors_add(errs, "quiet_hours.start", "must be HH:MM");
    }

    if (!ngx_feira_users_is_hhmm(json_string_value(end),
                                 json_string_length(end)))
    {
        ngx_feira_errors_add(errs, "quiet_hours.end", "must be HH:MM");
    }

    if (!ngx_feira_users_is_tz(json_string_value(tz),
                               json_string_length(tz)))
    {
        ngx_feira_errors_add(errs, "quiet_hours.tz",
                             "must be an IANA time zone name");
    }

    if (errs->n == before
        && strcmp(json_string_value(start), json_string_value(end)) == 0)
    {
        ngx_feira_errors_add(errs, "quiet_hours",
                             "start and end must differ");
    }
}
