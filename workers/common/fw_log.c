/*
 * Logging of the workers: "<UTC time> [level] <name>[pid]: message" lines.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fw_log.h"


static const char  *fw_log_name = "worker";
static int          fw_log_level = FW_LOG_INFO;

static const char  *fw_log_levels[] = { "error", "warn", "info", "debug" };


void
fw_log_init(const char *name, const char *level)
{
    int  i;

    fw_log_name = name;

    if (level == NULL) {
        return;
    }

    for (i = 0; i <= FW_LOG_DEBUG; i++) {
        if (strcasecmp(level, fw_log_levels[i]) == 0) {
            fw_log_level = i;
        }
    }
}


int
fw_log_enabled(int level)
{
    return level <= fw_log_level;
}


void
fw_log(int level, const char *fmt, ...)
{
    char            line[2048], ts[32];
    size_t          n;
    va_list         ap;
    struct tm       tm;
    struct timeval  tv;

    if (level > fw_log_level) {
        return;
    }

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    n = snprintf(line, sizeof(line), "%s.%03dZ [%s] %s[%d]: ", ts,
                 (int) (tv.tv_usec / 1000), fw_log_levels[level], fw_log_name,
                 (int) getpid());

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);

    /* one write per line keeps lines whole between threads */
    fprintf(stderr, "%s\n", line);
}
