/*
 * Strict field-by-field validation of JSON request bodies.
 *
 * Pure C over jansson, with no nginx dependency, so that the C unit tests
 * and the fuzz targets can link it alone.
 */

#ifndef _NGX_FEIRA_VALIDATE_H_INCLUDED_
#define _NGX_FEIRA_VALIDATE_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


#define NGX_FEIRA_MAX_ERRORS  16

/* the list convention of the contract: ?limit= (1..100, default 20) */
#define NGX_FEIRA_PAGE_DEFAULT  20
#define NGX_FEIRA_PAGE_MAX      100


typedef enum {
    NGX_FEIRA_STRING = 0,
    NGX_FEIRA_INTEGER,
    NGX_FEIRA_NUMBER,
    NGX_FEIRA_BOOLEAN,
    NGX_FEIRA_OBJECT,
    NGX_FEIRA_ARRAY,
    NGX_FEIRA_ENUM,
    NGX_FEIRA_OBJECT_ID
} ngx_feira_type_e;


typedef struct {
    const char          *name;
    ngx_feira_type_e     type;
    int                  required;
    /* strings: length in characters; arrays: number of items */
    size_t               min_len;
    size_t               max_len;
    /* integers and numbers; ignored when min > max */
    double               min;
    double               max;
    /* NGX_FEIRA_ENUM: NULL-terminated list of allowed strings */
    const char *const   *values;
} ngx_feira_field_t;


typedef struct {
    const char          *field;
    const char          *message;
} ngx_feira_error_t;


typedef struct {
    ngx_feira_error_t    items[NGX_FEIRA_MAX_ERRORS];
    size_t               n;
    /* field names of nested errors are built here */
    char                 names[NGX_FEIRA_MAX_ERRORS][64];
} ngx_feira_errors_t;


typedef struct {
    size_t               limit;
    /* the opaque ?cursor=: the 24-hex id of the last item seen, or "" */
    char                 cursor[25];
} ngx_feira_page_t;


void ngx_feira_errors_add(ngx_feira_errors_t *errs, const char *field,
    const char *message);
int ngx_feira_validate_object(const json_t *obj,
    const ngx_feira_field_t *fields, ngx_feira_errors_t *errs);
int ngx_feira_json_is_safe(const json_t *value, int depth);
size_t ngx_feira_utf8_length(const char *s, size_t len);
int ngx_feira_is_object_id(const char *s, size_t len);
int ngx_feira_is_phone(const char *s, size_t len);
int ngx_feira_page_parse(const char *limit, size_t limit_len,
    const char *cursor, size_t cursor_len, ngx_feira_page_t *page,
    ngx_feira_errors_t *errs);


#endif /* _NGX_FEIRA_VALIDATE_H_INCLUDED_ */
