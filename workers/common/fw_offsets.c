/*
 * In-flight offsets of one partition.  Messages are added in the order the
 * consumer returns them (increasing offsets); they finish in any order;
 * the committable offset is one past the last of the finished prefix.
 */

#include <stdlib.h>
#include <string.h>

#include "fw_offsets.h"


void
fw_offsets_init(fw_offsets_t *t)
{
    memset(t, 0, sizeof(*t));
    t->commit = -1;
}


void
fw_offsets_free(fw_offsets_t *t)
{
    free(t->offsets);
    free(t->done);
    fw_offsets_init(t);
}


int
fw_offsets_add(fw_offsets_t *t, int64_t offset)
{
    size_t          cap;
    int64_t        *o;
    unsigned char  *d;

    if (t->len > t->head && t->offsets[t->len - 1] >= offset) {
        return -1;
    }

    if (t->head > 0 && t->len == t->cap) {
        /* slide the live part to the front */
        memmove(t->offsets, t->offsets + t->head,
                (t->len - t->head) * sizeof(int64_t));
        memmove(t->done, t->done + t->head, t->len - t->head);
        t->len -= t->head;
        t->head = 0;
    }

    if (t->len == t->cap) {
        cap = t->cap ? t->cap * 2 : 64;

        o = realloc(t->offsets, cap * sizeof(int64_t));
        if (o == NULL) {
            return -1;
        }
        t->offsets = o;

        d = realloc(t->done, cap);
        if (d == NULL) {
            return -1;
        }
        t->done = d;

        t->cap = cap;
    }

    t->offsets[t->len] = offset;
    t->done[t->len] = 0;
    t->len++;

    return 0;
}


/* marks `offset` done; -1 when it is not in flight */

int
fw_offsets_done(fw_offsets_t *t, int64_t offset)
{
    size_t  lo, hi, mid;

    lo = t->head;
    hi = t->len;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (t->offsets[mid] < offset) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (lo == t->len || t->offsets[lo] != offset || t->done[lo]) {
        return -1;
    }

    t->done[lo] = 1;

    while (t->head < t->len && t->done[t->head]) {
        t->commit = t->offsets[t->head] + 1;
        t->dirty = 1;
        t->head++;
    }

    if (t->head == t->len) {
        t->head = 0;
        t->len = 0;
    }

    return 0;
}


size_t
fw_offsets_pending(fw_offsets_t *t)
{
    return t->len - t->head;
}


/* 1 and the offset to store when it moved since the last call */

int
fw_offsets_take(fw_offsets_t *t, int64_t *commit)
{
    if (!t->dirty) {
        return 0;
    }

    t->dirty = 0;
    *commit = t->commit;

    return 1;
}
