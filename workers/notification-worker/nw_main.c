/*
 * feira-notification-worker: push, e-mail and SMS from Kafka events, with
 * per-user preferences, quiet hours, retries, dead letters and the in-app
 * inbox.  Configuration: environment variables (workers/README.md),
 * optionally preset from the file given with -c.
 */

#include <curl/curl.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nw.h"
#include "../common/fw_conf.h"
#include "../common/fw_http.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


#ifndef NW_TEMPLATES_DIR
#define NW_TEMPLATES_DIR  "workers/notification-worker/templates"
#endif

#define NW_TOPICS  "feira.requests,feira.chat,feira.payments,feira.reviews," \
                   "feira.notifications"


static fw_handler_t  nw_handler = {
    nw_handle, nw_poll, nw_tick, nw_busy
};


int
main(int argc, char **argv)
{
    int               opt, i, rc;
    nw_ctx_t          ctx;
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

    fw_log_init("notification-worker", fw_conf_str("FEIRA_LOG_LEVEL", "info"));
    fw_signals_init();
    fw_metrics_init();

    curl_global_init(CURL_GLOBAL_ALL);
    mongoc_init();

    memset(&ctx, 0, sizeof(ctx));

    fw_worker_conf_env(&wc, "feira-notification-worker",
                       "feira-notification-worker", NW_TOPICS);

    if (wc.dlq_topic == NULL) {
        wc.dlq_topic = "feira.notifications.dlq";
    }

    /*
     * A batch costs two queries (users, devices) that the store answers
     * by reading whole collections on FerretDB: under load, the more
     * events share them the better (a fifth less store CPU per
     * notification at 512 than at 256, bench/notifications.sh).
     */
    if (fw_conf_str("FEIRA_WORKER_BATCH", NULL) == NULL) {
        wc.batch = 512;
    }

    ctx.max_attempts = wc.max_attempts;
    ctx.backoff_base_ms = wc.backoff_base_ms;
    ctx.backoff_max_ms = wc.backoff_max_ms;
    ctx.deferred_poll_ms = fw_conf_int("FEIRA_DEFERRED_POLL_MS", 1000, 10,
                                       3600000);
    ctx.flush_ms = fw_conf_int("FEIRA_NOTIFY_FLUSH_MS", 20, 0, 10000);
    ctx.deferred_stale_ms = fw_conf_int("FEIRA_DEFERRED_STALE_MS", 300000,
                                        1000, 86400000);

    ctx.templates = nw_templates_load(
                        fw_conf_str("FEIRA_NOTIFY_TEMPLATES", NW_TEMPLATES_DIR),
                        fw_conf_str("FEIRA_NOTIFY_DEFAULT_LANG", "pt-BR"));
    if (ctx.templates == NULL) {
        return 1;
    }

    ctx.email = nw_email_channel();
    ctx.push = nw_fcm_channel();
    ctx.sms = nw_sms_channel();

    if (ctx.email == NULL && ctx.push == NULL && ctx.sms == NULL) {
        fw_log_warn("no channel configured: only the in-app inbox is "
                    "written");
    }

    ctx.sender = nw_sender_new();
    if (ctx.sender == NULL) {
        fw_log_error("out of memory");
        return 1;
    }

    ctx.store = nw_store_new(fw_conf_str("FEIRA_MONGO_URI",
                                         "mongodb://127.0.0.1:27027/feira"));
    if (ctx.store == NULL) {
        return 1;
    }

    /* MongoDB may come up after the worker: wait for it a while */
    for (i = 0; nw_store_indexes(ctx.store) != 0; i++) {
        if (i == 30 || fw_signalled()) {
            fw_log_error("mongo: not reachable, giving up");
            return 1;
        }
        sleep(1);
    }

    if (fw_http_start(fw_conf_str("FEIRA_WORKER_LISTEN", "127.0.0.1:9101"))
        != 0)
    {
        return 1;
    }

    ctx.worker = fw_worker_new(&wc, &nw_handler, &ctx);
    if (ctx.worker == NULL) {
        return 1;
    }

    rc = fw_worker_run(ctx.worker);

    fw_worker_free(ctx.worker);
    fw_http_stop();
    nw_store_free(ctx.store);
    nw_sender_free(ctx.sender);
    nw_templates_free(ctx.templates);
    free(wc.topics[0]);
    free(wc.topics);
    mongoc_cleanup();
    curl_global_cleanup();

    return rc;
}
