/*
 * What every channel does with a job: its memory, the request body read by
 * curl, the response collected from it.
 */

#include <stdlib.h>
#include <string.h>

#include "nw_channel.h"


#define NW_RESP_MAX  65536


void
nw_job_free(nw_job_t *job)
{
    if (job == NULL) {
        return;
    }

    if (job->easy != NULL) {
        curl_easy_cleanup(job->easy);
    }

    curl_slist_free_all(job->headers);
    curl_slist_free_all(job->rcpt);
    free(job->to);
    free(job->subject);
    free(job->text);
    free(job->html);
    free(job->short_text);
    free(job->body);
    free(job->resp);
    free(job);
}


size_t
nw_job_body_read(char *buf, size_t size, size_t n, void *arg)
{
    size_t     len;
    nw_job_t  *job;

    job = arg;
    len = job->body_len - job->body_off;

    if (len > size * n) {
        len = size * n;
    }

    memcpy(buf, job->body + job->body_off, len);
    job->body_off += len;

    return len;
}


size_t
nw_job_resp_write(char *buf, size_t size, size_t n, void *arg)
{
    char      *p;
    size_t     len;
    nw_job_t  *job;

    job = arg;
    len = size * n;

    if (job->resp_len + len > NW_RESP_MAX) {
        /* the rest is not needed to judge the outcome */
        return len;
    }

    p = realloc(job->resp, job->resp_len + len + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + job->resp_len, buf, len);
    job->resp = p;
    job->resp_len += len;
    job->resp[job->resp_len] = '\0';

    return len;
}


/* a POST of job->body to url, with the headers in job->headers */

int
nw_job_http(nw_channel_t *ch, nw_job_t *job, const char *url)
{
    (void) ch;

    curl_easy_setopt(job->easy, CURLOPT_URL, url);
    curl_easy_setopt(job->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, job->body);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE, (long) job->body_len);
    curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(job->easy, CURLOPT_WRITEFUNCTION, nw_job_resp_write);
    curl_easy_setopt(job->easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "http,https");

    return 0;
}
