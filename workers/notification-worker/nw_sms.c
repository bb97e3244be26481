/*
 * The SMS channel: a Twilio-compatible API,
 * POST <base>/2010-04-01/Accounts/<sid>/Messages.json with basic auth and
 * a form body To, From, Body.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nw_channel.h"
#include "../common/fw_conf.h"
#include "../common/fw_log.h"
#include "../common/fw_worker.h"


typedef struct {
    const char  *sid;
    const char  *token;
    const char  *from;
    char         url[512];
} nw_sms_conf_t;


static int nw_sms_prepare(nw_channel_t *ch, nw_job_t *job);
static void nw_sms_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc);


static nw_sms_conf_t  nw_sms_conf;

static nw_channel_t  nw_sms = {
    "sms", nw_sms_prepare, nw_sms_finish, &nw_sms_conf, 10000,
    { 0, 0, 0, 0 }, 16, 0, NULL, NULL, 0
};


nw_channel_t *
nw_sms_channel(void)
{
    const char     *base;
    nw_sms_conf_t  *c;

    c = &nw_sms_conf;

    c->sid = fw_conf_str("FEIRA_SMS_ACCOUNT_SID", NULL);
    if (c->sid == NULL) {
        return NULL;
    }

    c->token = fw_conf_str("FEIRA_SMS_AUTH_TOKEN", "");
    c->from = fw_conf_str("FEIRA_SMS_FROM", NULL);
    base = fw_conf_str("FEIRA_SMS_URL", "https://api.twilio.com");

    if (c->from == NULL || strspn(c->sid, "ABCDEFabcdef0123456789") == 0
        || c->sid[strspn(c->sid, "ABCDEFabcdef0123456789")] != '\0')
    {
        fw_log_error("FEIRA_SMS_ACCOUNT_SID must be letters and digits, and "
                     "FEIRA_SMS_FROM set");
        exit(2);
    }

    snprintf(c->url, sizeof(c->url), "%s/2010-04-01/Accounts/%s/Messages.json",
             base, c->sid);

    nw_sms.timeout_ms = fw_conf_int("FEIRA_SMS_TIMEOUT_MS", 10000, 100,
                                    600000);
    nw_sms.max_active = fw_conf_int("FEIRA_SMS_CONCURRENCY", 16, 1, 1024);
    fw_bucket_init(&nw_sms.bucket,
                   (double) fw_conf_int("FEIRA_SMS_RATE", 10, 0, 1000000),
                   (double) fw_conf_int("FEIRA_SMS_BURST", 10, 1, 1000000),
                   fw_now_ms());

    fw_log_info("sms: %s", c->url);

    return &nw_sms;
}


static int
nw_sms_prepare(nw_channel_t *ch, nw_job_t *job)
{
    char           *to, *from, *text, hdr[200];
    size_t          n;
    nw_sms_conf_t  *c;

    c = ch->data;

    to = curl_easy_escape(job->easy, job->to, 0);
    from = curl_easy_escape(job->easy, c->from, 0);
    text = curl_easy_escape(job->easy, job->short_text, 0);

    if (to == NULL || from == NULL || text == NULL) {
        curl_free(to);
        curl_free(from);
        curl_free(text);
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    n = strlen(to) + strlen(from) + strlen(text) + 32;
    job->body = malloc(n);

    if (job->body != NULL) {
        job->body_len = snprintf(job->body, n, "To=%s&From=%s&Body=%s", to,
                                 from, text);
    }

    curl_free(to);
    curl_free(from);
    curl_free(text);

    if (job->body == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    snprintf(hdr, sizeof(hdr), "X-Feira-Idempotency-Key: %s", job->key);
    job->headers = curl_slist_append(NULL, hdr);
    if (job->headers == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    curl_easy_setopt(job->easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(job->easy, CURLOPT_USERNAME, c->sid);
    curl_easy_setopt(job->easy, CURLOPT_PASSWORD, c->token);

    return nw_job_http(ch, job, c->url);
}


static void
nw_sms_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc)
{
    long  status;

    (void) ch;

    if (rc != CURLE_OK) {
        snprintf(job->error, sizeof(job->error), "sms: %s",
                 curl_easy_strerror(rc));
        job->result = NW_TRANSIENT;
        return;
    }

    status = 0;
    curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);

    if (status >= 200 && status < 300) {
        job->result = NW_SENT;
        return;
    }

    snprintf(job->error, sizeof(job->error), "sms: status %ld", status);
    job->result = (status == 429 || status >= 500) ? NW_TRANSIENT
                                                   : NW_PERMANENT;
}
