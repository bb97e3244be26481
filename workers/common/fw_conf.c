/*
 * Configuration of the workers.  Values come from the environment; a file
 * of KEY=VALUE lines ('#' starts a comment) may preset those the
 * environment does not name.  A bad value stops the worker at start with
 * a message naming the variable: the fail-fast of `nginx -t`.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fw_conf.h"
#include "fw_log.h"


static char *fw_conf_trim(char *s);


int
fw_conf_load(const char *path)
{
    int    lineno;
    char   line[4096], *p, *eq, *key, *val;
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        fw_log_error("cannot open configuration file \"%s\": %s", path,
                     strerror(errno));
        return -1;
    }

    lineno = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;

        p = fw_conf_trim(line);
        if (*p == '\0' || *p == '#') {
            continue;
        }

        eq = strchr(p, '=');
        if (eq == NULL) {
            fw_log_error("%s:%d: expected KEY=VALUE", path, lineno);
            fclose(f);
            return -1;
        }

        *eq = '\0';
        key = fw_conf_trim(p);
        val = fw_conf_trim(eq + 1);

        if (*key == '\0') {
            fw_log_error("%s:%d: empty key", path, lineno);
            fclose(f);
            return -1;
        }

        /* the environment overrides the file */
        if (setenv(key, val, 0) != 0) {
            fw_log_error("%s:%d: setenv failed", path, lineno);
            fclose(f);
            return -1;
        }
    }

    fclose(f);

    return 0;
}


static char *
fw_conf_trim(char *s)
{
    char  *e;

    while (isspace((unsigned char) *s)) {
        s++;
    }

    e = s + strlen(s);

    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }

    return s;
}


const char *
fw_conf_str(const char *name, const char *dflt)
{
    const char  *v;

    v = getenv(name);

    return (v != NULL && *v != '\0') ? v : dflt;
}


long
fw_conf_int(const char *name, long dflt, long min, long max)
{
    long         n;
    char        *end;
    const char  *v;

    v = fw_conf_str(name, NULL);
    if (v == NULL) {
        return dflt;
    }

    errno = 0;
    n = strtol(v, &end, 10);

    if (errno != 0 || *end != '\0' || n < min || n > max) {
        fw_log_error("%s=\"%s\": expected an integer in %ld..%ld", name, v,
                     min, max);
        exit(2);
    }

    return n;
}


int
fw_conf_bool(const char *name, int dflt)
{
    const char  *v;

    v = fw_conf_str(name, NULL);
    if (v == NULL) {
        return dflt;
    }

    if (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0
        || strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0)
    {
        return 1;
    }

    if (strcasecmp(v, "0") == 0 || strcasecmp(v, "false") == 0
        || strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0)
    {
        return 0;
    }

    fw_log_error("%s=\"%s\": expected on or off", name, v);
    exit(2);
}
