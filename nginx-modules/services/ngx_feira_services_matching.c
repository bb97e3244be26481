/*
 * The matching score, haversine distance, availability windows and the
 * offering profile codec: pure functions, see docs/matching.md.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_feira_matching.h"


#define NGX_FEIRA_DEG  (M_PI / 180.0)


typedef struct {
    const char  *p;
    const char  *last;
} ngx_feira_scan_t;


static int ngx_feira_digits(const char *s, size_t n, int *value);
static int ngx_feira_scan_word(ngx_feira_scan_t *sc, const char **w,
    size_t *len);
static int ngx_feira_number(const char *s, size_t len, double *v,
    int integer);
static int ngx_feira_scan_number(ngx_feira_scan_t *sc, double *v,
    int integer);
static int ngx_feira_scan_digits(const char **p, const char *last,
    char stop, long *v);
static int64_t ngx_feira_days_from_civil(int64_t y, unsigned m, unsigned d);


double
ngx_feira_haversine_km(double lat1, double lng1, double lat2, double lng2)
{
    double  dlat, dlng, a;

    dlat = (lat2 - lat1) * NGX_FEIRA_DEG;
    dlng = (lng2 - lng1) * NGX_FEIRA_DEG;

    a = sin(dlat / 2) * sin(dlat / 2)
        + cos(lat1 * NGX_FEIRA_DEG) * cos(lat2 * NGX_FEIRA_DEG)
          * sin(dlng / 2) * sin(dlng / 2);

    if (a > 1.0) {
        a = 1.0;
    }

    return 2 * NGX_FEIRA_EARTH_RADIUS_KM * asin(sqrt(a));
}


/*
 * The strings matching reads are written by the module itself, but still
 * parsed strictly, by hand: a ranking parses thousands of them, and
 * strtod() and strtok() were most of its time.
 */

/* the next space-separated field; the space after it is consumed */

static int
ngx_feira_scan_word(ngx_feira_scan_t *sc, const char **w, size_t *len)
{
    const char  *p;

    p = sc->p;

    while (sc->p < sc->last && *sc->p != ' ') {
        sc->p++;
    }

    if (sc->p == p) {
        return -1;
    }

    *w = p;
    *len = sc->p - p;

    if (sc->p < sc->last) {
        sc->p++;

        if (sc->p == sc->last) {
            return -1;      /* a trailing space */
        }
    }

    return 0;
}


/* [-]digits[.digits], a whole field */

static int
ngx_feira_number(const char *s, size_t len, double *v, int integer)
{
    int          neg, digits;
    size_t       i;
    double       scale, x;

    i = 0;
    neg = 0;

    if (len && s[0] == '-') {
        neg = 1;
        i++;
    }

    x = 0;
    digits = 0;

    for ( /* void */ ; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        x = x * 10 + (s[i] - '0');
        digits++;
    }

    if (i < len && s[i] == '.' && !integer) {
        scale = 1;

        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            x = x * 10 + (s[i] - '0');
            scale *= 10;
            digits++;
        }

        x /= scale;
    }

    if (i != len || digits == 0 || digits > 18) {
        return -1;
    }

    *v = neg ? -x : x;

    return 0;
}


static int
ngx_feira_scan_number(ngx_feira_scan_t *sc, double *v, int integer)
{
    size_t       len;
    const char  *w;

    if (ngx_feira_scan_word(sc, &w, &len) != 0) {
        return -1;
    }

    return ngx_feira_number(w, len, v, integer);
}


/* digits up to a delimiter: the window parts */

static int
ngx_feira_scan_digits(const char **p, const char *last, char stop, long *v)
{
    const char  *s;

    *v = 0;
    s = *p;

    while (*p < last && **p >= '0' && **p <= '9' && *p - s < 5) {
        *v = *v * 10 + (**p - '0');
        (*p)++;
    }

    if (*p == s) {
        return -1;
    }

    if (stop) {
        if (*p == last || **p != stop) {
            return -1;
        }

        (*p)++;
    }

    return 0;
}


/*
 * "<offering id> <amount> <currency> <h|f> <radius km> <windows>", the
 * windows "-" or "<day>:<start>-<end>,..." in minutes, as
 * "6a1f... 8000 BRL h 12.5 1:480-1080,2:480-1080".
 */

int
ngx_feira_profile_parse(const char *s, size_t len, ngx_feira_profile_t *p)
{
    long               day, start, stop;
    size_t             n;
    double             v;
    const char        *w, *last;
    ngx_feira_scan_t   sc;

    sc.p = s;
    sc.last = s + len;

    if (len == 0 || len >= NGX_FEIRA_PROFILE_LEN
        || ngx_feira_scan_word(&sc, &w, &n) != 0 || n != 24)
    {
        return -1;
    }

    memcpy(p->offering_id, w, 24);
    p->offering_id[24] = '\0';

    if (ngx_feira_scan_number(&sc, &v, 1) != 0 || v < 0) {
        return -1;
    }

    p->amount = (int64_t) v;

    if (ngx_feira_scan_word(&sc, &w, &n) != 0 || n != 3) {
        return -1;
    }

    memcpy(p->currency, w, 3);
    p->currency[3] = '\0';

    if (ngx_feira_scan_word(&sc, &w, &n) != 0 || n != 1
        || (w[0] != 'h' && w[0] != 'f'))
    {
        return -1;
    }

    p->hourly = (w[0] == 'h');

    if (ngx_feira_scan_number(&sc, &v, 0) != 0 || v <= 0) {
        return -1;
    }

    p->radius_km = v;

    if (ngx_feira_scan_word(&sc, &w, &n) != 0 || sc.p != sc.last) {
        return -1;
    }

    p->nwindows = 0;

    if (n == 1 && w[0] == '-') {
        return 0;
    }

    last = w + n;

    while (w < last) {

        if (p->nwindows == NGX_FEIRA_MAX_WINDOWS
            || ngx_feira_scan_digits(&w, last, ':', &day) != 0
            || ngx_feira_scan_digits(&w, last, '-', &start) != 0
            || ngx_feira_scan_digits(&w, last, 0, &stop) != 0
            || day > 6 || stop > 1440 || start >= stop)
        {
            return -1;
        }

        if (w < last) {
            if (*w != ',' || w + 1 == last) {
                return -1;
            }

            w++;
        }

        p->windows[p->nwindows].day = (uint8_t) day;
        p->windows[p->nwindows].start = (uint16_t) start;
        p->windows[p->nwindows].end = (uint16_t) stop;
        p->nwindows++;
    }

    return 0;
}


/*
 * feira:offers: "<YYYYMM> <offered> <accepted>[ <YYYYMM> <offered>
 * <accepted>]", the latest month first; what was counted in "month" and
 * "before" (the month before it).
 */

int
ngx_feira_offers_parse(const char *s, size_t len, int64_t month,
    int64_t before, int64_t *received, int64_t *accepted)
{
    int               i;
    double            v[6];
    ngx_feira_scan_t  sc;

    sc.p = s;
    sc.last = s + len;

    *received = 0;
    *accepted = 0;

    for (i = 0; i < 6 && sc.p < sc.last; i++) {
        if (ngx_feira_scan_number(&sc, &v[i], 1) != 0 || v[i] < 0) {
            return -1;
        }
    }

    if ((i != 3 && i != 6) || sc.p != sc.last) {
        return -1;
    }

    if ((int64_t) v[0] == month) {
        *received = (int64_t) v[1];
        *accepted = (int64_t) v[2];

        if (i == 6 && (int64_t) v[3] == before) {
            *received += (int64_t) v[4];
            *accepted += (int64_t) v[5];
        }

    } else if ((int64_t) v[0] == before) {
        *received = (int64_t) v[1];
        *accepted = (int64_t) v[2];
    }

    return 0;
}


/* the length written, without the NUL; 0 if it does not fit */

size_t
ngx_feira_profile_format(const ngx_feira_profile_t *p, char *buf, size_t len)
{
    int     n;
    size_t  i, used;

    n = snprintf(buf, len, "%s %lld %s %c %.3f ", p->offering_id,
                 (long long) p->amount, p->currency, p->hourly ? 'h' : 'f',
                 p->radius_km);
    if (n < 0 || (size_t) n >= len) {
        return 0;
    }

    used = (size_t) n;

    if (p->nwindows == 0) {
        n = snprintf(buf + used, len - used, "-");
        if (n < 0 || (size_t) n >= len - used) {
            return 0;
        }

        return used + n;
    }

    for (i = 0; i < p->nwindows; i++) {
        n = snprintf(buf + used, len - used, "%s%u:%u-%u", i ? "," : "",
                     (unsigned) p->windows[i].day,
                     (unsigned) p->windows[i].start,
                     (unsigned) p->windows[i].end);
        if (n < 0 || (size_t) n >= len - used) {
            return 0;
        }

        used += n;
    }

    return used;
}


/* the windows are in UTC; a request without a time needs none */

int
ngx_feira_availability_covers(const ngx_feira_profile_t *p, int64_t when)
{
    int     day;
    size_t  i;
    long    minute;

    if (when == 0) {
        return 1;
    }

    day = ngx_feira_weekday(when);
    minute = (long) (((when % 86400) + 86400) % 86400) / 60;

    for (i = 0; i < p->nwindows; i++) {
        if (p->windows[i].day == day && minute >= p->windows[i].start
            && minute < p->windows[i].end)
        {
            return 1;
        }
    }

    return 0;
}


int
ngx_feira_match_eligible(const ngx_feira_match_request_t *rq,
    const ngx_feira_profile_t *p, double distance_km)
{
    return distance_km <= p->radius_km
           && ngx_feira_availability_covers(p, rq->scheduled_at);
}


/* "HH:MM" in minutes, or -1; "24:00" only where allowed (an end) */

int
ngx_feira_parse_hhmm(const char *s, size_t len, int allow_24)
{
    int  h, m;

    if (len != 5 || s[2] != ':' || ngx_feira_digits(s, 2, &h) != 0
        || ngx_feira_digits(s + 3, 2, &m) != 0 || m > 59)
    {
        return -1;
    }

    if (h == 24 && m == 0 && allow_24) {
        return 1440;
    }

    if (h > 23) {
        return -1;
    }

    return h * 60 + m;
}


/* RFC 3339: "2026-12-01T10:15:00Z", fractions and offsets allowed */

int
ngx_feira_parse_rfc3339(const char *s, size_t len, int64_t *t)
{
    int          y, mo, d, h, mi, se, oh, om, sign;
    size_t       i;
    static int   mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (len < 20 || len > 40
        || ngx_feira_digits(s, 4, &y) || s[4] != '-'
        || ngx_feira_digits(s + 5, 2, &mo) || s[7] != '-'
        || ngx_feira_digits(s + 8, 2, &d)
        || (s[10] != 'T' && s[10] != 't')
        || ngx_feira_digits(s + 11, 2, &h) || s[13] != ':'
        || ngx_feira_digits(s + 14, 2, &mi) || s[16] != ':'
        || ngx_feira_digits(s + 17, 2, &se))
    {
        return -1;
    }

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]
        || h > 23 || mi > 59 || se > 60)
    {
        return -1;
    }

    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        i++;

        if (i >= len || s[i] < '0' || s[i] > '9') {
            return -1;
        }

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i >= len) {
        return -1;
    }

    oh = 0;
    om = 0;
    sign = 0;

    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        /* UTC */

    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len
               && ngx_feira_digits(s + i + 1, 2, &oh) == 0
               && s[i + 3] == ':'
               && ngx_feira_digits(s + i + 4, 2, &om) == 0
               && oh <= 23 && om <= 59)
    {
        sign = (s[i] == '+') ? 1 : -1;

    } else {
        return -1;
    }

    *t = ngx_feira_days_from_civil(y, mo, d) * 86400
         + h * 3600 + mi * 60 + (se == 60 ? 59 : se)
         - sign * (oh * 3600 + om * 60);

    return 0;
}


size_t
ngx_feira_format_rfc3339(int64_t t, char *buf, size_t len)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL) {
        return 0;
    }

    return strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


/* 0 Sunday .. 6 Saturday; 1970-01-01 was a Thursday */

int
ngx_feira_weekday(int64_t t)
{
    int64_t  days;

    days = t >= 0 ? t / 86400 : (t - 86399) / 86400;

    return (int) (((days % 7) + 11) % 7);
}


static int
ngx_feira_digits(const char *s, size_t n, int *value)
{
    size_t  i;

    *value = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *value = *value * 10 + (s[i] - '0');
    }

    return 0;
}


/* Howard Hinnant's days_from_civil: days since 1970-01-01 */

static int64_t
ngx_feira_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}
