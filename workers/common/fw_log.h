/*
 * Logging of the workers: one line per event on stderr, with a level.
 */

#ifndef FW_LOG_H
#define FW_LOG_H

#define FW_LOG_ERROR  0
#define FW_LOG_WARN   1
#define FW_LOG_INFO   2
#define FW_LOG_DEBUG  3

void fw_log_init(const char *name, const char *level);
void fw_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fw_log_enabled(int level);

#define fw_log_error(...)  fw_log(FW_LOG_ERROR, __VA_ARGS__)
#define fw_log_warn(...)   fw_log(FW_LOG_WARN, __VA_ARGS__)
#define fw_log_info(...)   fw_log(FW_LOG_INFO, __VA_ARGS__)
#define fw_log_debug(...)                                                     \
    do {                                                                      \
        if (fw_log_enabled(FW_LOG_DEBUG)) {                                   \
            fw_log(FW_LOG_DEBUG, __VA_ARGS__);                                \
        }                                                                     \
    } while (0)

#endif /* FW_LOG_H */
