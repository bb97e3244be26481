/*
 * feira-payment-worker: Stripe and PayPal for feira_payments, from Kafka.
 * Configuration: environment variables (workers/README.md), optionally
 * preset from the file given with -c; secrets from NAME or NAME_FILE, never
 * logged.
 */

#include <curl/curl.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw.h"
#include "../common/fw_conf.h"
#include "../common/fw_http.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


#define PW_TOPICS  "feira.payments.commands,feira.webhooks,feira.requests"


static char *pw_secret(const char *name);


static fw_handler_t  pw_handler = {
    pw_handle, pw_poll, pw_tick, pw_busy
};


int
main(int argc, char **argv)
{
    int               opt, i, rc;
    pw_ctx_t          ctx;
    fw_worker_conf_t  wc;

    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c':
            if (fw_conf_load(optarg) != 0) {
                return 2;
            }
            break;

        default:
            fprintf(stderr, "usage: %s [-c config-file]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }

    fw_log_init("payment-worker", fw_conf_str("FEIRA_LOG_LEVEL", "info"));
    fw_signals_init();
    fw_metrics_init();

    curl_global_init(CURL_GLOBAL_ALL);
    mongoc_init();

    memset(&ctx, 0, sizeof(ctx));

    fw_worker_conf_env(&wc, "feira-payment-worker", "feira-payment-worker",
                       PW_TOPICS);

    if (wc.dlq_topic == NULL) {
        wc.dlq_topic = "feira.payments.commands.dlq";
    }

    /*
     * Events are handled one after the other with blocking calls of up to
     * FEIRA_PAYMENT_HTTP_TIMEOUT_MS: small batches keep a turn of the loop
     * well within Kafka's max.poll.interval.ms.
     */
    if (fw_conf_str("FEIRA_WORKER_BATCH", NULL) == NULL) {
        wc.batch = 8;
    }

    ctx.http_timeout_ms = fw_conf_int("FEIRA_PAYMENT_HTTP_TIMEOUT_MS", 10000,
                                      100, 120000);
    ctx.test_pause_ms = fw_conf_int("FEIRA_PAYMENT_TEST_PAUSE_MS", 0, 0,
                                    60000);
    ctx.refund_on_cancel = fw_conf_bool("FEIRA_PAYMENT_REFUND_ON_CANCEL", 1);
    ctx.claim_stale_ms = fw_conf_int("FEIRA_PAYMENT_CLAIM_STALE_MS", 60000,
                                     1000, 3600000);
    ctx.rt_history_len = fw_conf_int("FEIRA_RT_HISTORY_LEN", 100, 1, 100000);
    ctx.rt_history_ttl = fw_conf_int("FEIRA_RT_HISTORY_TTL", 86400, 1,
                                     30 * 86400);
    ctx.redis_addr = fw_conf_str("FEIRA_REDIS", "127.0.0.1:6390");

    ctx.stripe_base = fw_conf_str("FEIRA_STRIPE_API_BASE",
                                  "https://api.stripe.com");
    ctx.stripe_key = pw_secret("FEIRA_STRIPE_SECRET_KEY");

    ctx.paypal_base = fw_conf_str("FEIRA_PAYPAL_API_BASE",
                                  "https://api-m.sandbox.paypal.com");
    ctx.paypal_client_id = pw_secret("FEIRA_PAYPAL_CLIENT_ID");
    ctx.paypal_secret = pw_secret("FEIRA_PAYPAL_CLIENT_SECRET");
    ctx.paypal_webhook_id = fw_conf_str("FEIRA_PAYPAL_WEBHOOK_ID", NULL);

    if (ctx.stripe_key == NULL) {
        fw_log_warn("no FEIRA_STRIPE_SECRET_KEY: Stripe payments wait");
    }

    if (ctx.paypal_client_id == NULL || ctx.paypal_secret == NULL) {
        fw_log_warn("no PayPal credentials: PayPal payments wait");
    }

    if (pw_store_open(&ctx, fw_conf_str("FEIRA_MONGO_URI",
                                        "mongodb://127.0.0.1:27027/feira"))
        != 0)
    {
        return 1;
    }

    /* MongoDB may come up after the worker: wait for it a while */
    for (i = 0; pw_store_indexes(&ctx) != 0; i++) {
        if (i == 30 || fw_signalled()) {
            fw_log_error("mongo: not reachable, giving up");
            return 1;
        }
        sleep(1);
    }

    if (pw_publish_open(&ctx, wc.brokers) != 0) {
        return 1;
    }

    if (fw_http_start(fw_conf_str("FEIRA_WORKER_LISTEN", "127.0.0.1:9102"))
        != 0)
    {
        return 1;
    }

    ctx.worker = fw_worker_new(&wc, &pw_handler, &ctx);
    if (ctx.worker == NULL) {
        return 1;
    }

    rc = fw_worker_run(ctx.worker);

    fw_worker_free(ctx.worker);
    fw_http_stop();
    pw_publish_close(&ctx);
    pw_store_close(&ctx);
    free(ctx.stripe_key);
    free(ctx.paypal_client_id);
    free(ctx.paypal_secret);
    free(ctx.paypal_token);
    free(wc.topics[0]);
    free(wc.topics);
    mongoc_cleanup();
    curl_global_cleanup();

    return rc;
}


/* NAME, or the first line of the file NAME_FILE; NULL when neither */

static char *
pw_secret(const char *name)
{
    FILE        *f;
    char         var[128], buf[1024];
    size_t       len;
    const char  *v;

    v = fw_conf_str(name, NULL);
    if (v != NULL && v[0] != '\0') {
        return strdup(v);
    }

    snprintf(var, sizeof(var), "%s_FILE", name);
    v = fw_conf_str(var, NULL);

    if (v == NULL || v[0] == '\0') {
        return NULL;
    }

    f = fopen(v, "r");
    if (f == NULL) {
        fw_log_error("%s: cannot open the file it names", var);
        return NULL;
    }

    if (fgets(buf, sizeof(buf), f) == NULL) {
        buf[0] = '\0';
    }

    fclose(f);

    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }

    return len ? strdup(buf) : NULL;
}
