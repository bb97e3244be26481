/*
 * text/csv (RFC 4180) of a dashboard or a summary: a header line, one line
 * per day, and a last line "total" for the range.  Per-currency amounts
 * and per-category counts get a column each (gross_BRL, category_faxina);
 * currencies and slugs are checked by the worker, so no field needs
 * quoting.  Rates have four decimals; what is unknown (a rate of nothing,
 * the median of no duration) is empty.
 */

#include "ngx_http_feira_analytics_module.h"


typedef struct {
    char                *buf;
    size_t               len;
    size_t               cap;
    ngx_uint_t           failed;
} ngx_feira_csv_t;


static void ngx_feira_csv_add(ngx_feira_csv_t *c, const char *fmt, ...);
static void ngx_feira_csv_num(ngx_feira_csv_t *c, json_t *v);
static json_t *ngx_feira_csv_keys(json_t *result, const char *field);
static char *ngx_feira_csv_done(ngx_feira_csv_t *c, size_t *len);


static void
ngx_feira_csv_add(ngx_feira_csv_t *c, const char *fmt, ...)
{
    int       n;
    char     *nb;
    va_list   args;

    if (c->failed) {
        return;
    }

    for ( ;; ) {
        va_start(args, fmt);
        n = vsnprintf(c->buf + c->len, c->cap - c->len, fmt, args);
        va_end(args);

        if (n < 0) {
            c->failed = 1;
            return;
        }

        if ((size_t) n < c->cap - c->len) {
            c->len += n;
            return;
        }

        c->cap = (c->cap + n + 1) * 2;
        nb = realloc(c->buf, c->cap);
        if (nb == NULL) {
            c->failed = 1;
            return;
        }
        c->buf = nb;
    }
}


static void
ngx_feira_csv_num(ngx_feira_csv_t *c, json_t *v)
{
    if (json_is_integer(v)) {
        ngx_feira_csv_add(c, ",%lld", (long long) json_integer_value(v));

    } else if (json_is_real(v)) {
        ngx_feira_csv_add(c, ",%.4f", json_real_value(v));

    } else {
        ngx_feira_csv_add(c, ",");
    }
}


/* the keys of days[].<field> and totals.<field>, in first-seen order */

static json_t *
ngx_feira_csv_keys(json_t *result, const char *field)
{
    size_t       i;
    json_t      *keys, *day, *v;
    const char  *k;

    keys = json_object();
    if (keys == NULL) {
        return NULL;
    }

    json_array_foreach(json_object_get(result, "days"), i, day) {
        json_object_foreach(json_object_get(day, field), k, v) {
            json_object_set_new(keys, k, json_true());
        }
    }

    return keys;
}


static char *
ngx_feira_csv_done(ngx_feira_csv_t *c, size_t *len)
{
    if (c->failed) {
        free(c->buf);
        return NULL;
    }

    *len = c->len;

    return c->buf;
}


char *
ngx_feira_analytics_dashboard_csv(json_t *result, size_t *len)
{
    size_t            i;
    json_t           *cur, *row, *v;
    const char       *k;
    ngx_uint_t        last;
    ngx_feira_csv_t   c;

    ngx_memzero(&c, sizeof(c));

    cur = ngx_feira_csv_keys(result, "earnings");
    if (cur == NULL) {
        return NULL;
    }

    ngx_feira_csv_add(&c, "day,offers,accepted,completed,cancelled,"
                      "acceptance_rate,offer_to_accept_median_ms,"
                      "offer_to_accept_p90_ms,first_response_median_ms,"
                      "first_response_p90_ms,rating_count,rating_avg");

    json_object_foreach(cur, k, v) {
        ngx_feira_csv_add(&c, ",gross_%s,net_%s", k, k);
    }

    ngx_feira_csv_add(&c, "\r\n");

    i = 0;
    last = 0;

    for ( ;; ) {
        row = json_array_get(json_object_get(result, "days"), i++);

        if (row == NULL) {
            if (last) {
                break;
            }
            row = json_object_get(result, "totals");
            last = 1;
            ngx_feira_csv_add(&c, "total");

        } else {
            ngx_feira_csv_add(&c, "%s",
                         json_string_value(json_object_get(row, "day")));
        }

        ngx_feira_csv_num(&c, json_object_get(row, "offers"));
        ngx_feira_csv_num(&c, json_object_get(row, "accepted"));
        ngx_feira_csv_num(&c, json_object_get(row, "completed"));
        ngx_feira_csv_num(&c, json_object_get(row, "cancelled"));
        ngx_feira_csv_num(&c, json_object_get(row, "acceptance_rate"));
        v = json_object_get(row, "offer_to_accept_ms");
        ngx_feira_csv_num(&c, json_object_get(v, "median"));
        ngx_feira_csv_num(&c, json_object_get(v, "p90"));
        v = json_object_get(row, "first_response_ms");
        ngx_feira_csv_num(&c, json_object_get(v, "median"));
        ngx_feira_csv_num(&c, json_object_get(v, "p90"));
        ngx_feira_csv_num(&c, json_object_get(row, "rating_count"));
        ngx_feira_csv_num(&c, json_object_get(row, "rating_avg"));

        json_object_foreach(cur, k, v) {
            v = json_object_get(json_object_get(row, "earnings"), k);
            ngx_feira_csv_add(&c, ",%lld,%lld",
                    (long long) json_integer_value(json_object_get(v,
                                                                "gross")),
                    (long long) json_integer_value(json_object_get(v,
                                                                "net")));
        }

        ngx_feira_csv_add(&c, "\r\n");

        if (last) {
            break;
        }
    }

    json_decref(cur);

    return ngx_feira_csv_done(&c, len);
}


char *
ngx_feira_analytics_summary_csv(json_t *result, size_t *len)
{
    size_t            i;
    json_t           *cur, *cats, *row, *v;
    const char       *k;
    ngx_uint_t        last;
    ngx_feira_csv_t   c;

    ngx_memzero(&c, sizeof(c));

    cur = ngx_feira_csv_keys(result, "gmv");
    cats = ngx_feira_csv_keys(result, "requests_by_category");

    if (cur == NULL || cats == NULL) {
        json_decref(cur);
        json_decref(cats);
        return NULL;
    }

    ngx_feira_csv_add(&c, "day,requests_created,accepted,completed,"
                      "cancelled,expired,fill_rate,payments,active_clients,"
                      "active_providers");

    json_object_foreach(cur, k, v) {
        ngx_feira_csv_add(&c, ",gmv_%s,fees_%s", k, k);
    }

    json_object_foreach(cats, k, v) {
        ngx_feira_csv_add(&c, ",category_%s", k);
    }

    ngx_feira_csv_add(&c, "\r\n");

    i = 0;
    last = 0;

    for ( ;; ) {
        row = json_array_get(json_object_get(result, "days"), i++);

        if (row == NULL) {
            row = json_object_get(result, "totals");
            last = 1;
            ngx_feira_csv_add(&c, "total");

        } else {
            ngx_feira_csv_add(&c, "%s",
                         json_string_value(json_object_get(row, "day")));
        }

        ngx_feira_csv_num(&c, json_object_get(row, "requests_created"));
        ngx_feira_csv_num(&c, json_object_get(row, "accepted"));
        ngx_feira_csv_num(&c, json_object_get(row, "completed"));
        ngx_feira_csv_num(&c, json_object_get(row, "cancelled"));
        ngx_feira_csv_num(&c, json_object_get(row, "expired"));
        ngx_feira_csv_num(&c, json_object_get(row, "fill_rate"));
        ngx_feira_csv_num(&c, json_object_get(row, "payments"));
        ngx_feira_csv_num(&c, json_object_get(row, "active_clients"));
        ngx_feira_csv_num(&c, json_object_get(row, "active_providers"));

        json_object_foreach(cur, k, v) {
            ngx_feira_csv_add(&c, ",%lld,%lld",
                (long long) json_integer_value(
                    json_object_get(json_object_get(row, "gmv"), k)),
                (long long) json_integer_value(
                    json_object_get(json_object_get(row, "fees"), k)));
        }

        json_object_foreach(cats, k, v) {
            ngx_feira_csv_add(&c, ",%lld",
                (long long) json_integer_value(json_object_get(
                    json_object_get(row, "requests_by_category"), k)));
        }

        ngx_feira_csv_add(&c, "\r\n");

        if (last) {
            break;
        }
    }

    json_decref(cur);
    json_decref(cats);

    return ngx_feira_csv_done(&c, len);
}
