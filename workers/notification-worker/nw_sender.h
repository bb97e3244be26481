/*
 * Concurrent sends over libcurl multi, with a rate limit and a cap of
 * sends in flight per channel.
 */

#ifndef NW_SENDER_H
#define NW_SENDER_H

#include "nw_channel.h"

typedef struct nw_sender_s  nw_sender_t;

nw_sender_t *nw_sender_new(void);
void nw_sender_free(nw_sender_t *s);
void nw_sender_submit(nw_sender_t *s, nw_job_t *job);
void nw_sender_poll(nw_sender_t *s, int timeout_ms);
size_t nw_sender_pending(nw_sender_t *s);

#endif /* NW_SENDER_H */
