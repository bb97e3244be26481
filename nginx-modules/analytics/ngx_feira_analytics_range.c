/*
 * The dates of ?from= and ?to=: YYYY-MM-DD, a real calendar day, as the
 * UTC midnight that starts it.
 */

#include "ngx_http_feira_analytics_module.h"


ngx_int_t
ngx_feira_analytics_date(const u_char *s, size_t len, time_t *day)
{
    int        y, m, d;
    time_t     t;
    ngx_uint_t i;
    struct tm  tm, chk;

    if (len != 10 || s[4] != '-' || s[7] != '-') {
        return NGX_ERROR;
    }

    for (i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
            return NGX_ERROR;
        }
    }

    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10
        + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return NGX_ERROR;
    }

    ngx_memzero(&tm, sizeof(struct tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;

    t = timegm(&tm);
    if (t == (time_t) -1) {
        return NGX_ERROR;
    }

    /* 2026-02-30 is no day */
    gmtime_r(&t, &chk);

    if (chk.tm_mday != d || chk.tm_mon != m - 1) {
        return NGX_ERROR;
    }

    *day = t;

    return NGX_OK;
}


void
ngx_feira_analytics_day_str(time_t day, char buf[11])
{
    struct tm  tm;

    gmtime_r(&day, &tm);
    strftime(buf, 11, "%Y-%m-%d", &tm);
}
