/*
 * Notification templates, loaded once at start into memory.
 *
 * A template is a set of files <dir>/<lang>/<name>.subject, .txt, .html
 * and .short.  "{{ var }}" is replaced by the value of var in the
 * variables object (strings as they are, numbers formatted, anything else
 * and unknown names empty).  In the HTML part values are escaped, in the
 * subject and short parts line breaks become spaces, so that no value can
 * add markup or a header.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nw_template.h"
#include "../common/fw_log.h"


typedef struct nw_tpl_s  nw_tpl_t;

struct nw_tpl_s {
    char       lang[16];
    char       name[64];
    char      *parts[NW_PARTS];
    nw_tpl_t  *next;
};

struct nw_templates_s {
    nw_tpl_t  *list;
    char       dflt[16];
};

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
    int      failed;
} nw_str_t;


static const char  *nw_part_ext[NW_PARTS] = {
    "subject", "txt", "html", "short"
};


static char *nw_read_file(const char *path);
static nw_tpl_t *nw_find(nw_templates_t *t, const char *lang,
    const char *name);
static void nw_put(nw_str_t *s, const char *p, size_t n);
static void nw_put_escaped(nw_str_t *s, const char *p, size_t n, int escape);


int
nw_template_name_ok(const char *name)
{
    size_t  n;

    for (n = 0; name[n]; n++) {
        if (!((name[n] >= 'a' && name[n] <= 'z')
              || (name[n] >= '0' && name[n] <= '9') || name[n] == '_'))
        {
            return 0;
        }
    }

    return n > 0 && n < 64;
}


static char *
nw_read_file(const char *path)
{
    long   n;
    char  *buf;
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1048576
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }

    buf = malloc(n + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }

    if (fread(buf, 1, n, f) != (size_t) n) {
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';

    /* a subject or short text file ends with a newline that is not part
     * of it */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }

    return buf;
}


nw_templates_t *
nw_templates_load(const char *dir, const char *dflt_lang)
{
    int              i, count;
    DIR             *d, *ld;
    char             path[4096], name[64], *dot;
    size_t           len;
    nw_tpl_t        *tpl;
    struct dirent   *le, *fe;
    nw_templates_t  *t;

    t = calloc(1, sizeof(nw_templates_t));
    if (t == NULL) {
        return NULL;
    }

    snprintf(t->dflt, sizeof(t->dflt), "%s", dflt_lang);

    d = opendir(dir);
    if (d == NULL) {
        fw_log_error("templates: cannot open \"%s\": %s", dir,
                     strerror(errno));
        free(t);
        return NULL;
    }

    count = 0;

    while ((le = readdir(d)) != NULL) {
        if (le->d_name[0] == '.' || strlen(le->d_name) >= sizeof(tpl->lang)) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, le->d_name);

        ld = opendir(path);
        if (ld == NULL) {
            continue;
        }

        while ((fe = readdir(ld)) != NULL) {
            dot = strrchr(fe->d_name, '.');
            if (fe->d_name[0] == '.' || dot == NULL
                || strcmp(dot + 1, "subject") != 0)
            {
                continue;
            }

            len = dot - fe->d_name;
            if (len >= sizeof(name)) {
                continue;
            }

            memcpy(name, fe->d_name, len);
            name[len] = '\0';

            if (!nw_template_name_ok(name)) {
                continue;
            }

            tpl = calloc(1, sizeof(nw_tpl_t));
            if (tpl == NULL) {
                goto failed;
            }

            snprintf(tpl->lang, sizeof(tpl->lang), "%.15s", le->d_name);
            snprintf(tpl->name, sizeof(tpl->name), "%s", name);
            tpl->next = t->list;
            t->list = tpl;

            for (i = 0; i < NW_PARTS; i++) {
                snprintf(path, sizeof(path), "%s/%s/%s.%s", dir, le->d_name,
                         name, nw_part_ext[i]);

                tpl->parts[i] = nw_read_file(path);
                if (tpl->parts[i] == NULL) {
                    fw_log_error("templates: cannot read \"%s\"", path);
                    goto failed;
                }
            }

            count++;
        }

        closedir(ld);
        ld = NULL;
    }

    closedir(d);

    if (count == 0) {
        fw_log_error("templates: none in \"%s\"", dir);
        nw_templates_free(t);
        return NULL;
    }

    fw_log_info("templates: %d loaded from %s", count, dir);

    return t;

failed:

    if (ld != NULL) {
        closedir(ld);
    }

    closedir(d);
    nw_templates_free(t);

    return NULL;
}


void
nw_templates_free(nw_templates_t *t)
{
    int        i;
    nw_tpl_t  *tpl, *next;

    if (t == NULL) {
        return;
    }

    for (tpl = t->list; tpl != NULL; tpl = next) {
        next = tpl->next;

        for (i = 0; i < NW_PARTS; i++) {
            free(tpl->parts[i]);
        }

        free(tpl);
    }

    free(t);
}


static nw_tpl_t *
nw_find(nw_templates_t *t, const char *lang, const char *name)
{
    nw_tpl_t  *tpl;

    for (tpl = t->list; tpl != NULL; tpl = tpl->next) {
        if (strcmp(tpl->lang, lang) == 0 && strcmp(tpl->name, name) == 0) {
            return tpl;
        }
    }

    return NULL;
}


/* the language templates are taken from: the user's, else the default */

const char *
nw_templates_lang(nw_templates_t *t, const char *lang)
{
    nw_tpl_t  *tpl;

    if (lang != NULL) {
        for (tpl = t->list; tpl != NULL; tpl = tpl->next) {
            if (strcmp(tpl->lang, lang) == 0) {
                return tpl->lang;
            }
        }
    }

    return t->dflt;
}


int
nw_templates_has(nw_templates_t *t, const char *lang, const char *name)
{
    return nw_find(t, nw_templates_lang(t, lang), name) != NULL;
}


char *
nw_render(nw_templates_t *t, const char *lang, const char *name, int part,
    json_t *vars)
{
    int        escape;
    nw_tpl_t  *tpl;

    tpl = nw_find(t, nw_templates_lang(t, lang), name);
    if (tpl == NULL) {
        return NULL;
    }

    escape = NW_ESCAPE_NONE;

    if (part == NW_PART_HTML) {
        escape = NW_ESCAPE_HTML;

    } else if (part == NW_PART_SUBJECT || part == NW_PART_SHORT) {
        escape = NW_ESCAPE_LINE;
    }

    return nw_subst(tpl->parts[part], vars, escape);
}


static void
nw_put(nw_str_t *s, const char *p, size_t n)
{
    char    *np;
    size_t   cap;

    if (s->failed) {
        return;
    }

    if (s->len + n + 1 > s->cap) {
        cap = (s->len + n + 1) * 2;
        np = realloc(s->p, cap);
        if (np == NULL) {
            s->failed = 1;
            return;
        }
        s->p = np;
        s->cap = cap;
    }

    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}


static void
nw_put_escaped(nw_str_t *s, const char *p, size_t n, int escape)
{
    size_t       i, from;
    const char  *rep;

    from = 0;

    for (i = 0; i < n; i++) {
        rep = NULL;

        if (escape == NW_ESCAPE_HTML) {
            switch (p[i]) {
            case '&':  rep = "&amp;"; break;
            case '<':  rep = "&lt;"; break;
            case '>':  rep = "&gt;"; break;
            case '"':  rep = "&quot;"; break;
            case '\'': rep = "&#39;"; break;
            default:   break;
            }

        } else if (escape == NW_ESCAPE_LINE) {
            if (p[i] == '\r' || p[i] == '\n') {
                rep = " ";
            }
        }

        if (rep != NULL) {
            nw_put(s, p + from, i - from);
            nw_put(s, rep, strlen(rep));
            from = i + 1;
        }
    }

    nw_put(s, p + from, n - from);
}


char *
nw_subst(const char *tpl, json_t *vars, int escape)
{
    char         key[64], num[64];
    size_t       n;
    json_t      *v;
    nw_str_t     s;
    const char  *p, *open, *close, *k, *ke, *val;

    memset(&s, 0, sizeof(s));
    nw_put(&s, "", 0);

    p = tpl;

    while ((open = strstr(p, "{{")) != NULL) {
        close = strstr(open + 2, "}}");
        if (close == NULL) {
            break;
        }

        nw_put(&s, p, open - p);

        k = open + 2;
        ke = close;

        while (k < ke && *k == ' ') {
            k++;
        }

        while (ke > k && ke[-1] == ' ') {
            ke--;
        }

        n = ke - k;
        val = NULL;

        if (n > 0 && n < sizeof(key)) {
            memcpy(key, k, n);
            key[n] = '\0';

            v = json_object_get(vars, key);

            if (json_is_string(v)) {
                val = json_string_value(v);
                nw_put_escaped(&s, val, json_string_length(v), escape);

            } else if (json_is_integer(v)) {
                snprintf(num, sizeof(num), "%lld",
                         (long long) json_integer_value(v));
                nw_put(&s, num, strlen(num));

            } else if (json_is_real(v)) {
                snprintf(num, sizeof(num), "%g", json_real_value(v));
                nw_put(&s, num, strlen(num));
            }
        }

        p = close + 2;
    }

    nw_put(&s, p, strlen(p));

    if (s.failed) {
        free(s.p);
        return NULL;
    }

    return s.p;
}
