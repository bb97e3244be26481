/*
 * libFuzzer target: a Kafka message value through the analytics worker's
 * event parser (workers/analytics-worker/aw_event.c), and the raw bytes
 * through its RFC 3339 time parser.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aw_event.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        err[256], *s, day[11];
    int64_t     ms;
    aw_event_t  ev;

    if (aw_event_parse((const char *) data, size, &ev, err, sizeof(err))
        == 0 && ev.kind != AW_IGNORED)
    {
        /* what was accepted is well formed */
        if (strlen(ev.id) != 24 || strlen(ev.day) != 10) {
            abort();
        }
    }

    s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }

    memcpy(s, data, size);
    s[size] = '\0';

    if (aw_parse_time(s, &ms) == 0) {
        aw_day_of(ms, day);
    }

    free(s);

    return 0;
}
