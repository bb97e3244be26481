/*
 * A delivery channel (e-mail, push, SMS) and one send through it.  A new
 * provider is one file that fills an nw_channel_t: prepare() sets up a
 * curl easy handle for a job, finish() reads the outcome.
 */

#ifndef NW_CHANNEL_H
#define NW_CHANNEL_H

#include <curl/curl.h>
#include <stddef.h>

#include "../common/fw_backoff.h"

#define NW_SENT          0     /* handed to the provider */
#define NW_TRANSIENT     1     /* try again later */
#define NW_PERMANENT     2     /* will never work: recorded as failed */

typedef struct nw_job_s      nw_job_t;
typedef struct nw_channel_s  nw_channel_t;

struct nw_job_s {
    nw_channel_t   *channel;
    char            key[128];      /* event:user:channel[:device] */
    char            event_id[32];
    char            user_id[32];
    char            device_id[32]; /* push */
    char            event_type[64];
    char            template[64];
    char           *to;            /* address, phone number, device token */
    char           *subject;
    char           *text;
    char           *html;
    char           *short_text;

    CURL           *easy;
    struct curl_slist  *headers;
    struct curl_slist  *rcpt;
    char           *body;
    size_t          body_len;
    size_t          body_off;
    char           *resp;
    size_t          resp_len;

    int             result;
    int             unregistered;  /* push: the token is gone */
    char            error[256];

    void          (*done)(nw_job_t *job);
    void           *owner;
    nw_job_t       *next;
};

struct nw_channel_s {
    const char     *name;
    int           (*prepare)(nw_channel_t *ch, nw_job_t *job);
    void          (*finish)(nw_channel_t *ch, nw_job_t *job, CURLcode rc);
    void           *data;
    long            timeout_ms;

    fw_bucket_t     bucket;
    long            max_active;
    long            active;
    nw_job_t       *head;
    nw_job_t       *tail;
    size_t          queued;
};

nw_channel_t *nw_email_channel(void);
nw_channel_t *nw_fcm_channel(void);
nw_channel_t *nw_sms_channel(void);

void nw_job_free(nw_job_t *job);
size_t nw_job_body_read(char *buf, size_t size, size_t n, void *arg);
size_t nw_job_resp_write(char *buf, size_t size, size_t n, void *arg);
int nw_job_http(nw_channel_t *ch, nw_job_t *job, const char *url);

#endif /* NW_CHANNEL_H */
