/*
 * Parsing and checking of the events the analytics worker counts.  Every
 * field it uses is type-checked: an event that is not what docs/events.md
 * says is a permanent failure (dead letter); a type that no aggregate
 * counts (request.started, payment.pending, ...) is AW_IGNORED.
 */

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aw_event.h"


typedef struct {
    const char  *type;
    aw_kind_e    kind;
} aw_type_t;


static const aw_type_t  aw_types[] = {
    { "request.created", AW_REQ_CREATED },
    { "request.offered", AW_REQ_OFFERED },
    { "request.accepted", AW_REQ_ACCEPTED },
    { "request.completed", AW_REQ_COMPLETED },
    { "request.cancelled", AW_REQ_CANCELLED },
    { "request.expired", AW_REQ_EXPIRED },
    { "chat.message", AW_CHAT_MESSAGE },
    { "payment.succeeded", AW_PAY_SUCCEEDED },
    { "payment.refunded", AW_PAY_REFUNDED },
    { "review.created", AW_REVIEW_CREATED },
    { NULL, AW_IGNORED }
};


static int aw_id(json_t *data, const char *field, int required, char *out,
    char *err, size_t errlen);
static int aw_int(json_t *data, const char *field, int64_t min, int64_t max,
    int64_t *out, char *err, size_t errlen);
static int aw_digits(const char **p, int n, int *out);


aw_kind_e
aw_kind_of(const char *type)
{
    const aw_type_t  *t;

    for (t = aw_types; t->type != NULL; t++) {
        if (strcmp(t->type, type) == 0) {
            break;
        }
    }

    return t->kind;
}


int
aw_hex_id(const char *s)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }

    for (i = 0; i < 24; i++) {
        if (!isxdigit((unsigned char) s[i])) {
            return 0;
        }
    }

    return s[24] == '\0';
}


static int
aw_digits(const char **p, int n, int *out)
{
    int  v;

    v = 0;

    while (n--) {
        if (!isdigit((unsigned char) **p)) {
            return -1;
        }
        v = v * 10 + (**p - '0');
        (*p)++;
    }

    *out = v;

    return 0;
}


/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) */

int
aw_parse_time(const char *s, int64_t *ms)
{
    int          y, mo, d, h, mi, sec, oh, om, sign, frac, scale;
    time_t       t;
    struct tm    tm, chk;
    const char  *p;

    p = s;

    if (aw_digits(&p, 4, &y) || *p++ != '-' || aw_digits(&p, 2, &mo)
        || *p++ != '-' || aw_digits(&p, 2, &d)
        || (*p != 'T' && *p != 't' && *p != ' '))
    {
        return -1;
    }

    p++;

    if (aw_digits(&p, 2, &h) || *p++ != ':' || aw_digits(&p, 2, &mi)
        || *p++ != ':' || aw_digits(&p, 2, &sec))
    {
        return -1;
    }

    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59
        || sec > 60 || y < 1970)
    {
        return -1;
    }

    frac = 0;

    if (*p == '.') {
        p++;
        scale = 100;

        if (!isdigit((unsigned char) *p)) {
            return -1;
        }

        while (isdigit((unsigned char) *p)) {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }

    sign = 0;
    oh = 0;
    om = 0;

    if (*p == 'Z' || *p == 'z') {
        p++;

    } else if (*p == '+' || *p == '-') {
        sign = (*p == '-') ? -1 : 1;
        p++;

        if (aw_digits(&p, 2, &oh) || *p++ != ':' || aw_digits(&p, 2, &om)
            || oh > 23 || om > 59)
        {
            return -1;
        }

    } else {
        return -1;
    }

    if (*p != '\0') {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;

    t = timegm(&tm);
    if (t == (time_t) -1) {
        return -1;
    }

    /* timegm normalises 2026-02-31: such a date is not a date */
    gmtime_r(&t, &chk);

    if (chk.tm_mday != d && sec != 60) {
        return -1;
    }

    t -= (time_t) sign * (oh * 3600 + om * 60);

    *ms = (int64_t) t * 1000 + frac;

    return 0;
}


void
aw_day_of(int64_t ms, char day[11])
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);
    gmtime_r(&t, &tm);
    strftime(day, 11, "%Y-%m-%d", &tm);
}


static int
aw_id(json_t *data, const char *field, int required, char *out, char *err,
    size_t errlen)
{
    json_t      *v;
    const char  *s;
    size_t       i;

    v = json_object_get(data, field);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "data.%s: missing", field);
            return -1;
        }
        out[0] = '\0';
        return 0;
    }

    s = json_string_value(v);

    if (!aw_hex_id(s)) {
        snprintf(err, errlen, "data.%s: expected a 24-hex id", field);
        return -1;
    }

    for (i = 0; i < 24; i++) {
        out[i] = (char) tolower((unsigned char) s[i]);
    }

    out[24] = '\0';

    return 0;
}


static int
aw_int(json_t *data, const char *field, int64_t min, int64_t max,
    int64_t *out, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(data, field);

    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
    {
        snprintf(err, errlen, "data.%s: expected an integer in "
                 "%lld..%lld", field, (long long) min, (long long) max);
        return -1;
    }

    *out = json_integer_value(v);

    return 0;
}


int
aw_event_parse(const char *payload, size_t len, aw_event_t *ev, char *err,
    size_t errlen)
{
    int               rc;
    size_t            i, k, n;
    json_t           *root, *data, *v, *actor;
    int64_t           rating;
    const char       *type, *s;
    json_error_t      jerr;
    const aw_type_t  *t;

    memset(ev, 0, sizeof(aw_event_t));

    root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object: %s", jerr.text);
        json_decref(root);
        return -1;
    }

    rc = -1;

    s = json_string_value(json_object_get(root, "id"));
    if (!aw_hex_id(s)) {
        snprintf(err, errlen, "id: expected a 24-hex id");
        goto done;
    }

    for (i = 0; i < 24; i++) {
        ev->id[i] = (char) tolower((unsigned char) s[i]);
    }

    type = json_string_value(json_object_get(root, "type"));
    if (type == NULL) {
        snprintf(err, errlen, "type: expected a string");
        goto done;
    }

    for (t = aw_types; t->type != NULL; t++) {
        if (strcmp(t->type, type) == 0) {
            break;
        }
    }

    ev->kind = t->kind;
    ev->type = t->type;

    if (ev->kind == AW_IGNORED) {
        rc = 0;
        goto done;
    }

    s = json_string_value(json_object_get(root, "occurred_at"));
    if (s == NULL || aw_parse_time(s, &ev->at) != 0) {
        snprintf(err, errlen, "occurred_at: expected an RFC 3339 time");
        goto done;
    }

    aw_day_of(ev->at, ev->day);

    actor = json_object_get(root, "actor");
    s = json_string_value(json_object_get(actor, "role"));
    if (s != NULL) {
        snprintf(ev->actor_role, sizeof(ev->actor_role), "%s", s);
    }

    data = json_object_get(root, "data");
    if (!json_is_object(data)) {
        snprintf(err, errlen, "data: expected an object");
        goto done;
    }

    switch (ev->kind) {

    case AW_REQ_CREATED:
    case AW_REQ_ACCEPTED:
    case AW_REQ_COMPLETED:
    case AW_REQ_CANCELLED:
    case AW_REQ_EXPIRED:
        if (aw_id(data, "request_id", 1, ev->request_id, err, errlen)
            || aw_id(data, "client_id", 1, ev->client_id, err, errlen)
            || aw_id(data, "provider_id", ev->kind == AW_REQ_ACCEPTED,
                     ev->provider_id, err, errlen))
        {
            goto done;
        }

        v = json_object_get(data, "category");
        s = json_string_value(v);

        if (s == NULL || *s == '\0' || json_string_length(v) > 64) {
            if (ev->kind == AW_REQ_CREATED || v != NULL) {
                snprintf(err, errlen, "data.category: expected a slug");
                goto done;
            }

        } else {
            for (i = 0; s[i]; i++) {
                if (!(islower((unsigned char) s[i])
                      || isdigit((unsigned char) s[i]) || s[i] == '-'
                      || s[i] == '_'))
                {
                    snprintf(err, errlen, "data.category: expected a slug");
                    goto done;
                }
            }
            snprintf(ev->category, sizeof(ev->category), "%s", s);
        }

        break;

    case AW_REQ_OFFERED:
        if (aw_id(data, "request_id", 1, ev->request_id, err, errlen)
            || aw_id(data, "client_id", 0, ev->client_id, err, errlen))
        {
            goto done;
        }

        v = json_object_get(data, "provider_ids");
        n = json_array_size(v);

        if (!json_is_array(v) || n > AW_MAX_OFFERED) {
            snprintf(err, errlen, "data.provider_ids: expected an array of "
                     "at most %d ids", AW_MAX_OFFERED);
            goto done;
        }

        for (i = 0; i < n; i++) {
            s = json_string_value(json_array_get(v, i));
            if (!aw_hex_id(s)) {
                snprintf(err, errlen, "data.provider_ids: expected 24-hex "
                         "ids");
                goto done;
            }

            for (k = 0; k < 24; k++) {
                ev->providers[ev->nproviders][k] =
                                        (char) tolower((unsigned char) s[k]);
            }

            ev->providers[ev->nproviders][24] = '\0';

            /* a provider offered twice in one event counts once */
            for (k = 0; k < ev->nproviders; k++) {
                if (strcmp(ev->providers[k],
                           ev->providers[ev->nproviders]) == 0)
                {
                    ev->nproviders--;
                    break;
                }
            }

            ev->nproviders++;
        }

        break;

    case AW_CHAT_MESSAGE:
        if (aw_id(data, "request_id", 1, ev->request_id, err, errlen)
            || aw_id(data, "from", 1, ev->from, err, errlen)
            || aw_id(data, "to", 1, ev->to, err, errlen))
        {
            goto done;
        }

        break;

    case AW_PAY_SUCCEEDED:
    case AW_PAY_REFUNDED:
        if (aw_id(data, "payment_id", 1, ev->payment_id, err, errlen)
            || aw_id(data, "request_id", 0, ev->request_id, err, errlen)
            || aw_id(data, "payer_id", 1, ev->client_id, err, errlen)
            || aw_id(data, "payee_id", 1, ev->provider_id, err, errlen)
            || aw_int(data, "amount", 0, INT64_C(1000000000000), &ev->amount,
                      err, errlen)
            || aw_int(data, "fee", 0, ev->amount, &ev->fee, err, errlen))
        {
            goto done;
        }

        s = json_string_value(json_object_get(data, "currency"));

        if (s == NULL || strlen(s) != 3 || !isupper((unsigned char) s[0])
            || !isupper((unsigned char) s[1])
            || !isupper((unsigned char) s[2]))
        {
            snprintf(err, errlen, "data.currency: expected an ISO 4217 code");
            goto done;
        }

        memcpy(ev->currency, s, 4);

        break;

    case AW_REVIEW_CREATED:
        if (aw_id(data, "request_id", 0, ev->request_id, err, errlen)
            || aw_id(data, "reviewer_id", 1, ev->client_id, err, errlen)
            || aw_id(data, "reviewee_id", 1, ev->provider_id, err, errlen)
            || aw_int(data, "rating", 1, 5, &rating, err, errlen))
        {
            goto done;
        }

        ev->rating = (int) rating;

        break;

    default:
        break;
    }

    rc = 0;

done:

    json_decref(root);

    return rc;
}
