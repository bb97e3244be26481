/*
 * Quiet hours: {start:"HH:MM", end:"HH:MM", tz:"<IANA zone>"} in the
 * user's preferences.  A window with start > end spans midnight; start ==
 * end is no window.  "HH:MM:SS" is accepted too.
 */

#include <stdlib.h>
#include <string.h>

#include "nw_quiet.h"


/* "HH:MM" or "HH:MM:SS" to seconds since midnight; -1 when malformed */

int
nw_parse_clock(const char *s, int *seconds)
{
    int  h, m, sec;

    if (s == NULL || (strlen(s) != 5 && strlen(s) != 8)) {
        return -1;
    }

    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':'
        || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
    {
        return -1;
    }

    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    sec = 0;

    if (s[5] != '\0') {
        if (s[5] != ':' || s[6] < '0' || s[6] > '9' || s[7] < '0'
            || s[7] > '9')
        {
            return -1;
        }

        sec = (s[6] - '0') * 10 + (s[7] - '0');
    }

    if (h > 23 || m > 59 || sec > 59) {
        return -1;
    }

    *seconds = h * 3600 + m * 60 + sec;

    return 0;
}


/*
 * Seconds from `now` to the end of the window [start, end) when now is
 * inside it, 0 when it is not (all in seconds since local midnight).
 */

long
nw_quiet_wait(int now, int start, int end)
{
    int  inside;

    if (start == end) {
        return 0;
    }

    if (start < end) {
        inside = (now >= start && now < end);

    } else {
        inside = (now >= start || now < end);
    }

    if (!inside) {
        return 0;
    }

    return (end - now + 86400) % 86400;
}


/* an IANA zone name, not a path or a POSIX TZ rule */

int
nw_tz_ok(const char *tz)
{
    size_t  i;

    if (tz == NULL || tz[0] == '\0' || tz[0] == '/' || tz[0] == ':'
        || strlen(tz) > 64 || strstr(tz, "..") != NULL)
    {
        return 0;
    }

    for (i = 0; tz[i]; i++) {
        if (!((tz[i] >= 'a' && tz[i] <= 'z') || (tz[i] >= 'A' && tz[i] <= 'Z')
              || (tz[i] >= '0' && tz[i] <= '9') || tz[i] == '/'
              || tz[i] == '_' || tz[i] == '-' || tz[i] == '+'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The time when a notification held by quiet hours may go, or 0 when it
 * may go now.  The zone is applied by switching TZ for one localtime_r():
 * the worker's loop is single-threaded and nothing else reads TZ.  A zone
 * that is unknown or malformed counts as UTC.
 */

time_t
nw_quiet_until(time_t now, const char *start, const char *end,
    const char *tz)
{
    int         s, e, clock;
    long        wait;
    char       *saved;
    struct tm   tm;

    if (nw_parse_clock(start, &s) != 0 || nw_parse_clock(end, &e) != 0) {
        return 0;
    }

    if (tz != NULL && nw_tz_ok(tz)) {
        saved = getenv("TZ");
        saved = saved ? strdup(saved) : NULL;

        setenv("TZ", tz, 1);
        tzset();
        localtime_r(&now, &tm);

        if (saved != NULL) {
            setenv("TZ", saved, 1);
            free(saved);

        } else {
            unsetenv("TZ");
        }

        tzset();

    } else {
        gmtime_r(&now, &tm);
    }

    clock = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;

    wait = nw_quiet_wait(clock, s, e);

    return wait > 0 ? now + wait : 0;
}
