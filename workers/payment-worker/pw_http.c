/*
 * One blocking HTTP call of the payment worker (libcurl easy), with a
 * timeout.  Neither the headers nor the credentials are ever logged.
 */

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "../common/fw_log.h"


#define PW_HTTP_MAX_BODY  (1024 * 1024)


typedef struct {
    char    *data;
    size_t   len;
    int      too_large;
} pw_buf_t;


const char  pw_metric_calls[] = "feira_payment_provider_calls_total";
const char  pw_metric_payments[] = "feira_payments_total";
const char  pw_metric_amount[] = "feira_payments_amount_total";


static size_t pw_http_write(char *ptr, size_t size, size_t n, void *data);


pw_call_e
pw_http(pw_ctx_t *c, const char *method, const char *url,
    const char *const *headers, const char *userpwd, const char *body,
    pw_resp_t *resp)
{
    CURL               *easy;
    CURLcode            rc;
    pw_buf_t            buf;
    json_error_t        jerr;
    struct curl_slist  *list, *l;
    size_t              i;

    memset(resp, 0, sizeof(pw_resp_t));
    memset(&buf, 0, sizeof(buf));

    easy = curl_easy_init();
    if (easy == NULL) {
        snprintf(resp->error, sizeof(resp->error), "curl_easy_init failed");
        return PW_CALL_TRANSIENT;
    }

    list = NULL;

    for (i = 0; headers != NULL && headers[i] != NULL; i++) {
        l = curl_slist_append(list, headers[i]);
        if (l == NULL) {
            curl_slist_free_all(list);
            curl_easy_cleanup(easy);
            snprintf(resp->error, sizeof(resp->error), "out of memory");
            return PW_CALL_TRANSIENT;
        }
        list = l;
    }

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, c->http_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, c->http_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, pw_http_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "feira-payment-worker/1");

    if (userpwd != NULL) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERPWD, userpwd);
    }

    if (body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    }

    rc = curl_easy_perform(easy);

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(easy);

    if (rc != CURLE_OK || buf.too_large) {
        snprintf(resp->error, sizeof(resp->error), "%s %s: %s", method, url,
                 buf.too_large ? "answer too large" : curl_easy_strerror(rc));
        free(buf.data);
        return PW_CALL_TRANSIENT;
    }

    if (buf.len > 0) {
        resp->body = json_loadb(buf.data, buf.len, 0, &jerr);
    }

    free(buf.data);

    if (resp->status >= 200 && resp->status < 300) {
        if (resp->body == NULL) {
            snprintf(resp->error, sizeof(resp->error),
                     "%s %s: %ld without a JSON answer", method, url,
                     resp->status);
            return PW_CALL_TRANSIENT;
        }

        return PW_CALL_OK;
    }

    snprintf(resp->error, sizeof(resp->error), "%s %s: HTTP %ld", method,
             url, resp->status);

    if (resp->status == 408 || resp->status == 409 || resp->status == 429
        || resp->status >= 500 || resp->status < 200)
    {
        return PW_CALL_TRANSIENT;
    }

    return PW_CALL_REFUSED;
}


void
pw_resp_free(pw_resp_t *resp)
{
    json_decref(resp->body);
    resp->body = NULL;
}


/* application/x-www-form-urlencoded value */

char *
pw_form_escape(const char *s)
{
    char   *out, *p;
    size_t  i, len;

    static const char  hex[] = "0123456789ABCDEF";

    len = strlen(s);
    out = malloc(len * 3 + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
            || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'
            || ch == '.' || ch == '~')
        {
            *p++ = ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 0xf];
        }
    }

    *p = '\0';

    return out;
}


static size_t
pw_http_write(char *ptr, size_t size, size_t n, void *data)
{
    char      *p;
    pw_buf_t  *buf = data;

    size *= n;

    if (buf->len + size > PW_HTTP_MAX_BODY) {
        buf->too_large = 1;
        return 0;
    }

    p = realloc(buf->data, buf->len + size + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + buf->len, ptr, size);
    buf->data = p;
    buf->len += size;
    buf->data[buf->len] = '\0';

    return size;
}
