/*
 * Times as the API shows them: RFC 3339, UTC, whole seconds.
 */

#include "ngx_feira_common.h"


/* a BSON date (milliseconds since the epoch); buf of at least 21 bytes */

void
ngx_feira_rfc3339(int64_t ms, char *buf, size_t size)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
