/*
 * Exponential backoff with jitter, and a token bucket rate limiter:
 * pure functions of their inputs, unit-tested.
 */

#ifndef FW_BACKOFF_H
#define FW_BACKOFF_H

#include <stdint.h>

int64_t fw_backoff_ms(unsigned attempt, int64_t base_ms, int64_t max_ms,
    uint32_t rnd);


typedef struct {
    double   rate;      /* tokens per second, 0: unlimited */
    double   burst;     /* bucket size */
    double   tokens;
    int64_t  last_ms;
} fw_bucket_t;

void fw_bucket_init(fw_bucket_t *b, double rate, double burst, int64_t now);
int fw_bucket_take(fw_bucket_t *b, int64_t now);
int64_t fw_bucket_wait_ms(fw_bucket_t *b, int64_t now);

#endif /* FW_BACKOFF_H */
