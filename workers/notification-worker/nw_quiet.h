/*
 * Quiet hours: when a notification has to wait, and until when.
 */

#ifndef NW_QUIET_H
#define NW_QUIET_H

#include <time.h>

int nw_parse_clock(const char *s, int *seconds);
long nw_quiet_wait(int now, int start, int end);
int nw_tz_ok(const char *tz);
time_t nw_quiet_until(time_t now, const char *start, const char *end,
    const char *tz);

#endif /* NW_QUIET_H */
