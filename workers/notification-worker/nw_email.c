/*
 * The e-mail channel: SMTP through libcurl, STARTTLS when the server
 * offers it (or required), a multipart/alternative message with a text and
 * an HTML part.  The Message-ID is derived from the delivery key, so a
 * message sent again after a crash is recognisably the same message.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "nw_b64.h"
#include "nw_channel.h"
#include "../common/fw_conf.h"
#include "../common/fw_log.h"
#include "../common/fw_worker.h"


typedef struct {
    const char  *url;
    const char  *from;
    const char  *from_name;
    const char  *user;
    const char  *password;
    const char  *ca_file;
    long         use_ssl;
} nw_email_conf_t;

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
    int      failed;
} nw_buf_t;


static int nw_email_prepare(nw_channel_t *ch, nw_job_t *job);
static void nw_email_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc);
static void nw_cat(nw_buf_t *b, const char *s, size_t n);
static void nw_cats(nw_buf_t *b, const char *s);
static void nw_header_word(nw_buf_t *b, const char *s);
static void nw_b64_lines(nw_buf_t *b, const char *s);


static nw_email_conf_t  nw_email_conf;

static nw_channel_t  nw_email = {
    "email", nw_email_prepare, nw_email_finish, &nw_email_conf, 10000,
    { 0, 0, 0, 0 }, 16, 0, NULL, NULL, 0
};


nw_channel_t *
nw_email_channel(void)
{
    const char       *tls;
    nw_email_conf_t  *c;

    c = &nw_email_conf;

    c->url = fw_conf_str("FEIRA_SMTP_URL", "smtp://127.0.0.1:1025");
    if (strcmp(c->url, "off") == 0) {
        return NULL;
    }

    c->from = fw_conf_str("FEIRA_SMTP_FROM", "no-reply@feira.dev");
    c->from_name = fw_conf_str("FEIRA_SMTP_FROM_NAME", "Feira");
    c->user = fw_conf_str("FEIRA_SMTP_USER", NULL);
    c->password = fw_conf_str("FEIRA_SMTP_PASSWORD", NULL);
    c->ca_file = fw_conf_str("FEIRA_SMTP_CA_FILE", NULL);

    tls = fw_conf_str("FEIRA_SMTP_STARTTLS", "try");

    if (strcmp(tls, "try") == 0) {
        c->use_ssl = CURLUSESSL_TRY;

    } else if (strcmp(tls, "require") == 0) {
        c->use_ssl = CURLUSESSL_ALL;

    } else if (strcmp(tls, "off") == 0) {
        c->use_ssl = CURLUSESSL_NONE;

    } else {
        fw_log_error("FEIRA_SMTP_STARTTLS=\"%s\": try, require or off", tls);
        exit(2);
    }

    if (strpbrk(c->from, "\r\n<>, ") != NULL || strchr(c->from, '@') == NULL
        || strpbrk(c->from_name, "\r\n\"") != NULL)
    {
        fw_log_error("FEIRA_SMTP_FROM, FEIRA_SMTP_FROM_NAME: not an address");
        exit(2);
    }

    nw_email.timeout_ms = fw_conf_int("FEIRA_SMTP_TIMEOUT_MS", 10000, 100,
                                      600000);
    nw_email.max_active = fw_conf_int("FEIRA_SMTP_CONCURRENCY", 16, 1, 1024);
    fw_bucket_init(&nw_email.bucket,
                   (double) fw_conf_int("FEIRA_SMTP_RATE", 0, 0, 1000000),
                   (double) fw_conf_int("FEIRA_SMTP_BURST", 50, 1, 1000000),
                   fw_now_ms());

    fw_log_info("e-mail: %s, STARTTLS %s, from %s", c->url, tls, c->from);

    return &nw_email;
}


static void
nw_cat(nw_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->cap) {
        cap = (b->len + n + 1) * 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
nw_cats(nw_buf_t *b, const char *s)
{
    nw_cat(b, s, strlen(s));
}


/*
 * A header value: as it is when it is printable ASCII, else RFC 2047
 * encoded words of whole UTF-8 characters, folded.
 */

static void
nw_header_word(nw_buf_t *b, const char *s)
{
    char        *enc;
    size_t       len, n;
    const char  *p;

    for (p = s; *p; p++) {
        if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e) {
            break;
        }
    }

    if (*p == '\0') {
        nw_cats(b, s);
        return;
    }

    len = strlen(s);
    p = s;

    while (len > 0) {
        n = len > 42 ? 42 : len;

        /* do not cut a UTF-8 sequence */
        while (n < len && n > 0 && ((unsigned char) p[n] & 0xc0) == 0x80) {
            n--;
        }

        if (n == 0) {
            n = len > 42 ? 42 : len;
        }

        enc = nw_b64((const unsigned char *) p, n, 0, NULL);
        if (enc == NULL) {
            b->failed = 1;
            return;
        }

        if (p != s) {
            nw_cats(b, "\r\n ");
        }

        nw_cats(b, "=?UTF-8?B?");
        nw_cats(b, enc);
        nw_cats(b, "?=");
        free(enc);

        p += n;
        len -= n;
    }
}


static void
nw_b64_lines(nw_buf_t *b, const char *s)
{
    char    *enc;
    size_t   len, i;

    enc = nw_b64((const unsigned char *) s, strlen(s), 0, &len);
    if (enc == NULL) {
        b->failed = 1;
        return;
    }

    for (i = 0; i < len; i += 76) {
        nw_cat(b, enc + i, len - i > 76 ? 76 : len - i);
        nw_cats(b, "\r\n");
    }

    free(enc);
}


static int
nw_email_prepare(nw_channel_t *ch, nw_job_t *job)
{
    char              id[160], date[64], rcpt[300], *p;
    time_t            now;
    nw_buf_t          b;
    struct tm         tm;
    nw_email_conf_t  *c;

    c = ch->data;

    snprintf(id, sizeof(id), "%s", job->key);
    for (p = id; *p; p++) {
        if (*p == ':') {
            *p = '.';
        }
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

    memset(&b, 0, sizeof(b));

    nw_cats(&b, "Date: ");
    nw_cats(&b, date);
    nw_cats(&b, "\r\nFrom: ");
    nw_header_word(&b, c->from_name);
    nw_cats(&b, " <");
    nw_cats(&b, c->from);
    nw_cats(&b, ">\r\nTo: <");
    nw_cats(&b, job->to);
    nw_cats(&b, ">\r\nMessage-ID: <");
    nw_cats(&b, id);
    nw_cats(&b, "@notifications.feira>\r\nSubject: ");
    nw_header_word(&b, job->subject);
    nw_cats(&b, "\r\nMIME-Version: 1.0\r\nX-Feira-Event-Id: ");
    nw_cats(&b, job->event_id);
    nw_cats(&b, "\r\nX-Feira-Template: ");
    nw_cats(&b, job->template);
    nw_cats(&b, "\r\nContent-Type: multipart/alternative; "
            "boundary=\"=_feira_");
    nw_cats(&b, id);
    nw_cats(&b, "\"\r\n\r\n--=_feira_");
    nw_cats(&b, id);
    nw_cats(&b, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n");
    nw_b64_lines(&b, job->text);
    nw_cats(&b, "--=_feira_");
    nw_cats(&b, id);
    nw_cats(&b, "\r\nContent-Type: text/html; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n");
    nw_b64_lines(&b, job->html);
    nw_cats(&b, "--=_feira_");
    nw_cats(&b, id);
    nw_cats(&b, "--\r\n");

    if (b.failed) {
        free(b.p);
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    job->body = b.p;
    job->body_len = b.len;
    job->body_off = 0;

    snprintf(rcpt, sizeof(rcpt), "<%s>", job->to);
    job->rcpt = curl_slist_append(NULL, rcpt);
    if (job->rcpt == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    snprintf(rcpt, sizeof(rcpt), "<%s>", c->from);

    curl_easy_setopt(job->easy, CURLOPT_URL, c->url);
    curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(job->easy, CURLOPT_MAIL_FROM, rcpt);
    curl_easy_setopt(job->easy, CURLOPT_MAIL_RCPT, job->rcpt);
    curl_easy_setopt(job->easy, CURLOPT_USE_SSL, c->use_ssl);
    curl_easy_setopt(job->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(job->easy, CURLOPT_INFILESIZE, (long) job->body_len);
    curl_easy_setopt(job->easy, CURLOPT_READFUNCTION, nw_job_body_read);
    curl_easy_setopt(job->easy, CURLOPT_READDATA, job);

    if (c->ca_file != NULL) {
        curl_easy_setopt(job->easy, CURLOPT_CAINFO, c->ca_file);
    }

    if (c->user != NULL) {
        curl_easy_setopt(job->easy, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(job->easy, CURLOPT_PASSWORD, c->password);
    }

    return 0;
}


static void
nw_email_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc)
{
    long  code;

    (void) ch;

    if (rc == CURLE_OK) {
        job->result = NW_SENT;
        return;
    }

    code = 0;
    curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &code);

    snprintf(job->error, sizeof(job->error), "smtp: %s (%ld)",
             curl_easy_strerror(rc), code);

    /* a 5xx reply is the server's final word; all else may pass */
    job->result = (code >= 500 && code < 600) ? NW_PERMANENT : NW_TRANSIENT;
}
