/*
 * Configuration of the workers: environment variables, optionally preset
 * from a KEY=VALUE file (the environment wins).
 */

#ifndef FW_CONF_H
#define FW_CONF_H

int fw_conf_load(const char *path);
const char *fw_conf_str(const char *name, const char *dflt);
long fw_conf_int(const char *name, long dflt, long min, long max);
int fw_conf_bool(const char *name, int dflt);

#endif /* FW_CONF_H */
