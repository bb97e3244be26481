/*
 * The offsets of one partition that are in flight, so that the offset
 * stored for commit never passes a message whose work is not done, even
 * when later messages finish first.
 */

#ifndef FW_OFFSETS_H
#define FW_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t        *offsets;     /* increasing */
    unsigned char  *done;
    size_t          head;        /* first not yet released */
    size_t          len;
    size_t          cap;
    int64_t         commit;      /* next offset to store, -1: none yet */
    int             dirty;       /* commit moved since last taken */
} fw_offsets_t;

void fw_offsets_init(fw_offsets_t *t);
void fw_offsets_free(fw_offsets_t *t);
int fw_offsets_add(fw_offsets_t *t, int64_t offset);
int fw_offsets_done(fw_offsets_t *t, int64_t offset);
size_t fw_offsets_pending(fw_offsets_t *t);
int fw_offsets_take(fw_offsets_t *t, int64_t *commit);

#endif /* FW_OFFSETS_H */
