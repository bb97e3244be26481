/*
 * feira-analytics-worker: per-provider and marketplace daily aggregates
 * from the domain events (docs/events.md, "Analytics").  Configuration:
 * environment variables (workers/README.md), optionally preset from the
 * file given with -c.  --rebuild replays the topics into fresh aggregates
 * and exits.
 */

#include <getopt.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw.h"
#include "../common/fw_conf.h"
#include "../common/fw_http.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


static fw_handler_t  aw_handler = {
    aw_handle, aw_poll, aw_tick, aw_busy
};


static const struct option  aw_options[] = {
    { "rebuild", no_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};


int
main(int argc, char **argv)
{
    int               opt, i, rc, rebuild;
    aw_ctx_t          ctx;
    fw_worker_conf_t  wc;

    rebuild = 0;

    while ((opt = getopt_long(argc, argv, "c:h", aw_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (fw_conf_load(optarg) != 0) {
                return 2;
            }
            break;

        case 'r':
            rebuild = 1;
            break;

        default:
            fprintf(stderr, "usage: %s [-c config-file] [--rebuild]\n",
                    argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }

    fw_log_init("analytics-worker", fw_conf_str("FEIRA_LOG_LEVEL", "info"));
    fw_signals_init();
    fw_metrics_init();
    mongoc_init();

    memset(&ctx, 0, sizeof(ctx));

    fw_worker_conf_env(&wc, "feira-analytics-worker",
                       "feira-analytics-worker", AW_TOPICS);

    ctx.store = aw_store_new(fw_conf_str("FEIRA_MONGO_URI",
                                         "mongodb://127.0.0.1:27027/feira"));
    if (ctx.store == NULL) {
        return 1;
    }

    /* MongoDB may come up after the worker: wait for it a while */
    for (i = 0; aw_store_indexes(ctx.store) != 0; i++) {
        if (i == 30 || fw_signalled()) {
            fw_log_error("mongo: not reachable, giving up");
            return 1;
        }
        sleep(1);
    }

    if (rebuild) {
        rc = aw_rebuild(&ctx, wc.brokers, wc.topics, wc.ntopics, wc.batch);
        goto done;
    }

    if (fw_http_start(fw_conf_str("FEIRA_WORKER_LISTEN", "127.0.0.1:9103"))
        != 0)
    {
        return 1;
    }

    ctx.worker = fw_worker_new(&wc, &aw_handler, &ctx);
    if (ctx.worker == NULL) {
        return 1;
    }

    rc = fw_worker_run(ctx.worker);

    fw_worker_free(ctx.worker);
    fw_http_stop();

done:

    aw_store_free(ctx.store);
    free(wc.topics[0]);
    free(wc.topics);
    mongoc_cleanup();

    return rc;
}
