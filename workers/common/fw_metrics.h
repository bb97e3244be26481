/*
 * The metrics a worker exports on /metrics (Prometheus text format).
 */

#ifndef FW_METRICS_H
#define FW_METRICS_H

#include <stddef.h>
#include <stdint.h>

int fw_metrics_init(void);
void fw_metrics_processed(const char *topic);
void fw_metrics_retried(const char *topic);
void fw_metrics_dead_lettered(const char *topic);
void fw_metrics_observe(const char *topic, double seconds);
void fw_metrics_lag(const char *topic, int32_t partition, int64_t lag);
void fw_metrics_lag_clear(void);
void fw_metrics_ready(int ready);
int fw_metrics_is_ready(void);
void fw_metrics_count(const char *name, const char *help,
    const char *labels, double n);
char *fw_metrics_render(size_t *len);

#endif /* FW_METRICS_H */
