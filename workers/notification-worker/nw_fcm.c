/*
 * The push channel: the FCM HTTP v1 API.  Authorisation is the OAuth2
 * service-account flow: a JWT signed RS256 with the account's private key
 * is exchanged at its token_uri for an access token, cached until shortly
 * before it expires.  A token FCM reports as UNREGISTERED is marked on the
 * job, and the worker deletes that device.
 */

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nw_b64.h"
#include "nw_channel.h"
#include "../common/fw_conf.h"
#include "../common/fw_log.h"
#include "../common/fw_worker.h"


#define NW_FCM_SCOPE  "https://www.googleapis.com/auth/firebase.messaging"


typedef struct {
    const char  *endpoint;
    char        *project;
    char        *client_email;
    char        *key_id;
    char        *token_uri;
    EVP_PKEY    *key;
    char        *access_token;
    time_t       expires;
    char         url[512];
} nw_fcm_conf_t;


static int nw_fcm_prepare(nw_channel_t *ch, nw_job_t *job);
static void nw_fcm_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc);
static char *nw_fcm_jwt(nw_fcm_conf_t *c, time_t now);
static int nw_fcm_token(nw_fcm_conf_t *c, char *err, size_t errlen);


static nw_fcm_conf_t  nw_fcm_conf;

static nw_channel_t  nw_fcm = {
    "push", nw_fcm_prepare, nw_fcm_finish, &nw_fcm_conf, 10000,
    { 0, 0, 0, 0 }, 64, 0, NULL, NULL, 0
};


nw_channel_t *
nw_fcm_channel(void)
{
    BIO            *bio;
    json_t         *sa;
    const char     *path, *pem;
    json_error_t    jerr;
    nw_fcm_conf_t  *c;

    c = &nw_fcm_conf;

    path = fw_conf_str("FEIRA_FCM_CREDENTIALS", NULL);
    if (path == NULL) {
        return NULL;
    }

    sa = json_load_file(path, 0, &jerr);
    if (sa == NULL) {
        fw_log_error("FEIRA_FCM_CREDENTIALS \"%s\": %s (line %d)", path,
                     jerr.text, jerr.line);
        exit(2);
    }

    pem = json_string_value(json_object_get(sa, "private_key"));

    c->project = strdup(json_string_value(json_object_get(sa, "project_id"))
                        ? json_string_value(json_object_get(sa, "project_id"))
                        : "");
    c->client_email = strdup(
        json_string_value(json_object_get(sa, "client_email"))
        ? json_string_value(json_object_get(sa, "client_email")) : "");
    c->key_id = strdup(
        json_string_value(json_object_get(sa, "private_key_id"))
        ? json_string_value(json_object_get(sa, "private_key_id")) : "");
    c->token_uri = strdup(
        json_string_value(json_object_get(sa, "token_uri"))
        ? json_string_value(json_object_get(sa, "token_uri"))
        : "https://oauth2.googleapis.com/token");

    if (c->project == NULL || c->client_email == NULL || c->key_id == NULL
        || c->token_uri == NULL || pem == NULL || c->project[0] == '\0'
        || c->client_email[0] == '\0')
    {
        fw_log_error("FEIRA_FCM_CREDENTIALS \"%s\": a service account needs "
                     "project_id, client_email and private_key", path);
        exit(2);
    }

    bio = BIO_new_mem_buf(pem, -1);
    c->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (c->key == NULL || EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA) {
        fw_log_error("FEIRA_FCM_CREDENTIALS \"%s\": private_key is not an "
                     "RSA key in PEM", path);
        exit(2);
    }

    json_decref(sa);

    c->endpoint = fw_conf_str("FEIRA_FCM_ENDPOINT",
                              "https://fcm.googleapis.com");
    snprintf(c->url, sizeof(c->url), "%s/v1/projects/%s/messages:send",
             c->endpoint, c->project);

    nw_fcm.timeout_ms = fw_conf_int("FEIRA_FCM_TIMEOUT_MS", 10000, 100,
                                    600000);
    nw_fcm.max_active = fw_conf_int("FEIRA_FCM_CONCURRENCY", 64, 1, 1024);
    fw_bucket_init(&nw_fcm.bucket,
                   (double) fw_conf_int("FEIRA_FCM_RATE", 0, 0, 1000000),
                   (double) fw_conf_int("FEIRA_FCM_BURST", 100, 1, 1000000),
                   fw_now_ms());

    fw_log_info("push: FCM v1 at %s, project %s", c->endpoint, c->project);

    return &nw_fcm;
}


/* header.claims.signature, RS256 */

static char *
nw_fcm_jwt(nw_fcm_conf_t *c, time_t now)
{
    char           *head, *claims, *h64, *c64, *s64, *input, *jwt;
    size_t          siglen, n;
    json_t         *j;
    EVP_MD_CTX     *md;
    unsigned char   sig[1024];

    jwt = NULL;
    head = claims = h64 = c64 = s64 = input = NULL;

    j = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid",
                  c->key_id);
    head = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", c->client_email,
                  "scope", NW_FCM_SCOPE, "aud", c->token_uri,
                  "iat", (json_int_t) now, "exp", (json_int_t) now + 3600);
    claims = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (head == NULL || claims == NULL) {
        goto done;
    }

    h64 = nw_b64((unsigned char *) head, strlen(head), 1, NULL);
    c64 = nw_b64((unsigned char *) claims, strlen(claims), 1, NULL);
    if (h64 == NULL || c64 == NULL) {
        goto done;
    }

    n = strlen(h64) + strlen(c64) + 2;
    input = malloc(n);
    if (input == NULL) {
        goto done;
    }
    snprintf(input, n, "%s.%s", h64, c64);

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        goto done;
    }

    siglen = sizeof(sig);

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) != 1
        || EVP_DigestSign(md, sig, &siglen, (unsigned char *) input,
                          strlen(input)) != 1)
    {
        EVP_MD_CTX_free(md);
        goto done;
    }

    EVP_MD_CTX_free(md);

    s64 = nw_b64(sig, siglen, 1, NULL);
    if (s64 == NULL) {
        goto done;
    }

    n = strlen(input) + strlen(s64) + 2;
    jwt = malloc(n);
    if (jwt != NULL) {
        snprintf(jwt, n, "%s.%s", input, s64);
    }

done:

    free(head);
    free(claims);
    free(h64);
    free(c64);
    free(s64);
    free(input);

    return jwt;
}


/*
 * A fresh access token, fetched synchronously: it is needed once an hour,
 * and a worker may block.
 */

static int
nw_fcm_token(nw_fcm_conf_t *c, char *err, size_t errlen)
{
    int        rc;
    CURL      *easy;
    long       status;
    char      *jwt, *body;
    time_t     now;
    json_t    *resp, *tok, *exp;
    size_t     n;
    nw_job_t   job;
    CURLcode   crc;

    now = time(NULL);

    if (c->access_token != NULL && now < c->expires) {
        return 0;
    }

    free(c->access_token);
    c->access_token = NULL;

    jwt = nw_fcm_jwt(c, now);
    if (jwt == NULL) {
        snprintf(err, errlen, "fcm: cannot sign the token request");
        return -1;
    }

    n = strlen(jwt) + 128;
    body = malloc(n);
    if (body == NULL) {
        free(jwt);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    snprintf(body, n, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
             "grant-type%%3Ajwt-bearer&assertion=%s", jwt);
    free(jwt);

    easy = curl_easy_init();
    if (easy == NULL) {
        free(body);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    memset(&job, 0, sizeof(job));

    curl_easy_setopt(easy, CURLOPT_URL, c->token_uri);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, nw_job_resp_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &job);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, nw_fcm.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);

    crc = curl_easy_perform(easy);
    status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    free(body);

    rc = -1;

    if (crc != CURLE_OK) {
        snprintf(err, errlen, "fcm token: %s", curl_easy_strerror(crc));
        goto done;
    }

    resp = job.resp ? json_loads(job.resp, 0, NULL) : NULL;
    tok = json_object_get(resp, "access_token");
    exp = json_object_get(resp, "expires_in");

    if (status != 200 || !json_is_string(tok)) {
        snprintf(err, errlen, "fcm token: status %ld", status);
        json_decref(resp);
        goto done;
    }

    c->access_token = strdup(json_string_value(tok));
    /* renewed a minute early, so no send carries an expired token */
    c->expires = now + (json_is_integer(exp) ? json_integer_value(exp) : 3600)
                 - 60;
    json_decref(resp);

    if (c->access_token != NULL) {
        fw_log_info("fcm: new access token, valid %lld s",
                    (long long) (c->expires - now));
        rc = 0;
    }

done:

    free(job.resp);

    return rc;
}


static int
nw_fcm_prepare(nw_channel_t *ch, nw_job_t *job)
{
    char           *auth;
    size_t          n;
    json_t         *msg;
    nw_fcm_conf_t  *c;

    c = ch->data;

    if (nw_fcm_token(c, job->error, sizeof(job->error)) != 0) {
        job->result = NW_TRANSIENT;
        return -1;
    }

    msg = json_pack("{s:{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}}}",
                    "message",
                    "token", job->to,
                    "notification",
                      "title", job->subject,
                      "body", job->short_text,
                    "data",
                      "event_id", job->event_id,
                      "type", job->event_type,
                      "feira_key", job->key);
    if (msg == NULL) {
        snprintf(job->error, sizeof(job->error), "fcm: cannot build message");
        job->result = NW_PERMANENT;
        return -1;
    }

    job->body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);

    if (job->body == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    job->body_len = strlen(job->body);

    n = strlen(c->access_token) + 32;
    auth = malloc(n);
    if (auth == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    snprintf(auth, n, "Authorization: Bearer %s", c->access_token);
    job->headers = curl_slist_append(NULL, auth);
    free(auth);

    job->headers = curl_slist_append(job->headers,
                                     "Content-Type: application/json");

    n = strlen(job->key) + 40;
    auth = malloc(n);
    if (auth == NULL || job->headers == NULL) {
        free(auth);
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }

    snprintf(auth, n, "X-Feira-Idempotency-Key: %s", job->key);
    job->headers = curl_slist_append(job->headers, auth);
    free(auth);

    return nw_job_http(ch, job, c->url);
}


/*
 * FCM's errors: {"error":{"code","message","status","details":[{"@type":
 * "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode"}]}}.
 */

static void
nw_fcm_finish(nw_channel_t *ch, nw_job_t *job, CURLcode rc)
{
    long            status;
    size_t          i;
    json_t         *resp, *details, *d;
    const char     *code, *st;
    nw_fcm_conf_t  *c;

    c = ch->data;

    if (rc != CURLE_OK) {
        snprintf(job->error, sizeof(job->error), "fcm: %s",
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

    resp = job->resp ? json_loads(job->resp, 0, NULL) : NULL;
    code = NULL;
    st = json_string_value(json_object_get(json_object_get(resp, "error"),
                                           "status"));
    details = json_object_get(json_object_get(resp, "error"), "details");

    json_array_foreach(details, i, d) {
        if (json_is_string(json_object_get(d, "errorCode"))) {
            code = json_string_value(json_object_get(d, "errorCode"));
        }
    }

    snprintf(job->error, sizeof(job->error), "fcm: %ld %s", status,
             code ? code : (st ? st : ""));

    if (code != NULL && strcmp(code, "UNREGISTERED") == 0) {
        job->unregistered = 1;
        job->result = NW_PERMANENT;

    } else if (status == 401) {
        /* the access token was refused: a new one next time */
        free(c->access_token);
        c->access_token = NULL;
        job->result = NW_TRANSIENT;

    } else if (status == 429 || status >= 500) {
        job->result = NW_TRANSIENT;

    } else {
        job->result = NW_PERMANENT;
    }

    json_decref(resp);
}
