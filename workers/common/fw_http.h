/*
 * A tiny HTTP server on the worker's own port: /healthz and /metrics.
 */

#ifndef FW_HTTP_H
#define FW_HTTP_H

int fw_http_start(const char *listen_addr);
int fw_http_port(void);
void fw_http_stop(void);

#endif /* FW_HTTP_H */
