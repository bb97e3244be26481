/*
 * Notification templates: files templates/<lang>/<name>.<part>, with
 * {{variable}} substitutions, HTML-escaped in the html part.
 */

#ifndef NW_TEMPLATE_H
#define NW_TEMPLATE_H

#include <jansson.h>

#define NW_PART_SUBJECT  0     /* e-mail subject, push title, inbox title */
#define NW_PART_TEXT     1     /* e-mail text part */
#define NW_PART_HTML     2     /* e-mail HTML part */
#define NW_PART_SHORT    3     /* push body, SMS, inbox body */
#define NW_PARTS         4

#define NW_ESCAPE_NONE   0
#define NW_ESCAPE_HTML   1
#define NW_ESCAPE_LINE   2     /* one line: CR and LF become spaces */

typedef struct nw_templates_s  nw_templates_t;

nw_templates_t *nw_templates_load(const char *dir, const char *dflt_lang);
void nw_templates_free(nw_templates_t *t);
const char *nw_templates_lang(nw_templates_t *t, const char *lang);
int nw_templates_has(nw_templates_t *t, const char *lang, const char *name);
char *nw_render(nw_templates_t *t, const char *lang, const char *name,
    int part, json_t *vars);
char *nw_subst(const char *tpl, json_t *vars, int escape);
int nw_template_name_ok(const char *name);

#endif /* NW_TEMPLATE_H */
