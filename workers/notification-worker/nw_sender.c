/*
 * The sends of the notification worker: one curl multi handle for every
 * channel, so e-mails, pushes and SMS go out concurrently; connections
 * stay in the multi's cache between sends.  Each channel has a queue, a
 * token bucket (per-channel rate limit) and a cap on sends in flight.
 */

#include <stdlib.h>
#include <string.h>

#include "nw_sender.h"
#include "../common/fw_log.h"
#include "../common/fw_worker.h"


#define NW_MAX_CHANNELS  8
#define NW_MAX_IDLE      256


struct nw_sender_s {
    CURLM          *multi;
    nw_channel_t   *channels[NW_MAX_CHANNELS];
    size_t          nchannels;
    size_t          pending;
    CURL           *idle[NW_MAX_IDLE];   /* easy handles, reset, for reuse */
    size_t          nidle;
};


static void nw_sender_start(nw_sender_t *s, int64_t now, int64_t *wait);
static void nw_sender_reap(nw_sender_t *s);
static void nw_sender_finish(nw_sender_t *s, nw_job_t *job);
static CURL *nw_sender_easy(nw_sender_t *s);


nw_sender_t *
nw_sender_new(void)
{
    nw_sender_t  *s;

    s = calloc(1, sizeof(nw_sender_t));
    if (s == NULL) {
        return NULL;
    }

    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        free(s);
        return NULL;
    }

    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 256L);

    return s;
}


void
nw_sender_free(nw_sender_t *s)
{
    if (s != NULL) {
        while (s->nidle > 0) {
            curl_easy_cleanup(s->idle[--s->nidle]);
        }

        curl_multi_cleanup(s->multi);
        free(s);
    }
}


/*
 * An easy handle: one of a finished send, reset (its buffers stay
 * allocated), or a new one.  The connections are the multi's, either way.
 */

static CURL *
nw_sender_easy(nw_sender_t *s)
{
    if (s->nidle > 0) {
        return s->idle[--s->nidle];
    }

    return curl_easy_init();
}


size_t
nw_sender_pending(nw_sender_t *s)
{
    return s->pending;
}


void
nw_sender_submit(nw_sender_t *s, nw_job_t *job)
{
    size_t         i;
    nw_channel_t  *ch;

    ch = job->channel;

    for (i = 0; i < s->nchannels; i++) {
        if (s->channels[i] == ch) {
            break;
        }
    }

    if (i == s->nchannels && s->nchannels < NW_MAX_CHANNELS) {
        s->channels[s->nchannels++] = ch;
    }

    job->next = NULL;

    if (ch->tail != NULL) {
        ch->tail->next = job;

    } else {
        ch->head = job;
    }

    ch->tail = job;
    ch->queued++;
    s->pending++;
}


/* starts queued jobs while their channel has tokens and room */

static void
nw_sender_start(nw_sender_t *s, int64_t now, int64_t *wait)
{
    size_t         i;
    int64_t        w;
    nw_job_t      *job;
    nw_channel_t  *ch;

    for (i = 0; i < s->nchannels; i++) {
        ch = s->channels[i];

        while (ch->head != NULL && ch->active < ch->max_active) {
            if (!fw_bucket_take(&ch->bucket, now)) {
                w = fw_bucket_wait_ms(&ch->bucket, now);
                if (*wait < 0 || w < *wait) {
                    *wait = w;
                }
                break;
            }

            job = ch->head;
            ch->head = job->next;
            if (ch->head == NULL) {
                ch->tail = NULL;
            }
            ch->queued--;
            job->next = NULL;

            job->easy = nw_sender_easy(s);
            if (job->easy == NULL) {
                job->result = NW_TRANSIENT;
                snprintf(job->error, sizeof(job->error), "out of memory");
                nw_sender_finish(s, job);
                continue;
            }

            if (ch->prepare(ch, job) != 0) {
                if (job->result == NW_SENT) {
                    job->result = NW_TRANSIENT;
                }
                nw_sender_finish(s, job);
                continue;
            }

            curl_easy_setopt(job->easy, CURLOPT_PRIVATE, job);
            curl_easy_setopt(job->easy, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(job->easy, CURLOPT_TIMEOUT_MS, ch->timeout_ms);
            curl_easy_setopt(job->easy, CURLOPT_CONNECTTIMEOUT_MS,
                             ch->timeout_ms);

            if (curl_multi_add_handle(s->multi, job->easy) != CURLM_OK) {
                job->result = NW_TRANSIENT;
                snprintf(job->error, sizeof(job->error), "curl multi add");
                nw_sender_finish(s, job);
                continue;
            }

            ch->active++;
        }
    }
}


static void
nw_sender_finish(nw_sender_t *s, nw_job_t *job)
{
    s->pending--;
    job->done(job);
}


static void
nw_sender_reap(nw_sender_t *s)
{
    int        left;
    CURLMsg   *m;
    nw_job_t  *job;

    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }

        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &job);
        curl_multi_remove_handle(s->multi, m->easy_handle);

        job->channel->active--;
        job->result = NW_SENT;
        job->channel->finish(job->channel, job, m->data.result);

        /* the response and the outcome are read: the handle goes again */
        if (s->nidle < NW_MAX_IDLE) {
            curl_easy_reset(job->easy);
            s->idle[s->nidle++] = job->easy;
            job->easy = NULL;
        }

        nw_sender_finish(s, job);
    }
}


void
nw_sender_poll(nw_sender_t *s, int timeout_ms)
{
    int      running;
    int64_t  wait;

    wait = -1;
    nw_sender_start(s, fw_now_ms(), &wait);

    if (wait >= 0 && wait < timeout_ms) {
        timeout_ms = (int) wait;
    }

    curl_multi_perform(s->multi, &running);

    /* the loop's wait happens here: on the transfers, or idle */
    if (timeout_ms > 0) {
        curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(s->multi, &running);
    }

    nw_sender_reap(s);

    wait = -1;
    nw_sender_start(s, fw_now_ms(), &wait);
    curl_multi_perform(s->multi, &running);
    nw_sender_reap(s);
}
