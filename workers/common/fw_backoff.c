/*
 * Exponential backoff with "equal jitter" and a token bucket.
 */

#include "fw_backoff.h"


/*
 * The delay before retry number `attempt` (1 for the first retry):
 * d = min(max, base * 2^(attempt-1)), then a uniform pick in [d/2, d], so
 * that workers which failed together do not retry together, while the
 * delay still grows.  `rnd` is the caller's random number.
 */

int64_t
fw_backoff_ms(unsigned attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t   d, half;
    unsigned  i;

    if (attempt == 0) {
        attempt = 1;
    }

    if (base_ms < 1) {
        base_ms = 1;
    }

    if (max_ms < base_ms) {
        max_ms = base_ms;
    }

    d = base_ms;

    for (i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }

    if (d > max_ms) {
        d = max_ms;
    }

    half = d / 2;

    return half + (int64_t) (rnd % (uint64_t) (d - half + 1));
}


void
fw_bucket_init(fw_bucket_t *b, double rate, double burst, int64_t now)
{
    b->rate = rate;
    b->burst = burst < 1 ? 1 : burst;
    b->tokens = b->burst;
    b->last_ms = now;
}


static void
fw_bucket_refill(fw_bucket_t *b, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens += b->rate * (double) (now - b->last_ms) / 1000.0;
        if (b->tokens > b->burst) {
            b->tokens = b->burst;
        }
    }

    b->last_ms = now;
}


/* 1 and one token less when one is there, 0 otherwise */

int
fw_bucket_take(fw_bucket_t *b, int64_t now)
{
    if (b->rate <= 0) {
        return 1;
    }

    fw_bucket_refill(b, now);

    if (b->tokens < 1) {
        return 0;
    }

    b->tokens -= 1;

    return 1;
}


/* milliseconds until a token is there (0: now) */

int64_t
fw_bucket_wait_ms(fw_bucket_t *b, int64_t now)
{
    double  missing;

    if (b->rate <= 0) {
        return 0;
    }

    fw_bucket_refill(b, now);

    if (b->tokens >= 1) {
        return 0;
    }

    missing = 1 - b->tokens;

    return (int64_t) (missing * 1000.0 / b->rate) + 1;
}
