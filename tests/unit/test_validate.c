/*
 * Unit tests of the strict JSON body validation (ngx_feira_validate.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_validate.h"


static const char *const  roles[] = { "client", "provider", NULL };

static const ngx_feira_field_t  fields[] = {
    { "email", NGX_FEIRA_STRING, 1, 3, 254, 0, -1, NULL },
    { "name", NGX_FEIRA_STRING, 0, 1, 5, 0, -1, NULL },
    { "role", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1, roles },
    { "age", NGX_FEIRA_INTEGER, 0, 0, 0, 0, 150, NULL },
    { "lat", NGX_FEIRA_NUMBER, 0, 0, 0, -90, 90, NULL },
    { "online", NGX_FEIRA_BOOLEAN, 0, 0, 0, 0, -1, NULL },
    { "meta", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { "tags", NGX_FEIRA_ARRAY, 0, 0, 2, 0, -1, NULL },
    { "owner", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static int
check(const char *text, ngx_feira_errors_t *errs)
{
    int            rc;
    json_t        *json;
    json_error_t   error;

    memset(errs, 0, sizeof(*errs));

    json = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    assert_non_null(json);

    rc = ngx_feira_validate_object(json, fields, errs);

    json_decref(json);

    return rc;
}


static int
has_error(ngx_feira_errors_t *errs, const char *field, const char *message)
{
    size_t  i;

    for (i = 0; i < errs->n; i++) {
        if (strcmp(errs->items[i].field, field) == 0
            && strstr(errs->items[i].message, message) != NULL)
        {
            return 1;
        }
    }

    return 0;
}


static void
test_valid_body(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"name\":\"Zé\",\"age\":30,\"lat\":-23.5,"
                           "\"online\":true,\"meta\":{\"a\":[1,{\"b\":2}]},"
                           "\"tags\":[\"x\"],"
                           "\"owner\":\"0123456789abcdef01234567\"}",
                           &errs), 0);
    assert_int_equal(errs.n, 0);
}


static void
test_not_an_object(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("[1,2]", &errs), -1);
    assert_true(has_error(&errs, "", "JSON object"));
}


static void
test_required_and_null(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":null}", &errs), -1);
    assert_true(has_error(&errs, "email", "required"));
    assert_true(has_error(&errs, "role", "required"));
}


static void
test_operator_injection(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":{\"$ne\":null},\"role\":\"client\"}",
                           &errs), -1);
    assert_true(has_error(&errs, "email", "must be a string"));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"$where\":\"1\"}", &errs), -1);
    assert_true(has_error(&errs, "$where", "operators"));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"meta\":{\"x\":{\"$gt\":1}}}", &errs), -1);
    assert_true(has_error(&errs, "meta", "operators"));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"tags\":[{\"a.b\":1}]}", &errs), -1);
    assert_true(has_error(&errs, "tags", "dotted"));
}


static void
test_unknown_field(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"password_hash\":\"x\"}", &errs), -1);
    assert_true(has_error(&errs, "password_hash", "unknown field"));
}


static void
test_types(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":1,\"role\":\"client\",\"age\":1.5,"
                           "\"lat\":\"1\",\"online\":1,\"meta\":[],"
                           "\"tags\":{}}", &errs), -1);
    assert_true(has_error(&errs, "email", "string"));
    assert_true(has_error(&errs, "age", "integer"));
    assert_true(has_error(&errs, "lat", "number"));
    assert_true(has_error(&errs, "online", "true or false"));
    assert_true(has_error(&errs, "meta", "object"));
    assert_true(has_error(&errs, "tags", "array"));
}


static void
test_lengths_count_characters(void **state)
{
    ngx_feira_errors_t  errs;

    /* five characters, ten bytes: within max_len 5 */
    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"name\":\"ããããã\"}", &errs), 0);

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"name\":\"abcdef\"}", &errs), -1);
    assert_true(has_error(&errs, "name", "too long"));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"name\":\"\"}", &errs), -1);
    assert_true(has_error(&errs, "name", "empty"));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"tags\":[1,2,3]}", &errs), -1);
    assert_true(has_error(&errs, "tags", "number of items"));
}


static void
test_ranges_and_enums(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"admin\","
                           "\"age\":-1,\"lat\":90.0001}", &errs), -1);
    assert_true(has_error(&errs, "role", "allowed"));
    assert_true(has_error(&errs, "age", "range"));
    assert_true(has_error(&errs, "lat", "range"));
}


static void
test_object_id(void **state)
{
    ngx_feira_errors_t  errs;

    assert_true(ngx_feira_is_object_id("0123456789abcdefABCDEF01", 24));
    assert_false(ngx_feira_is_object_id("0123456789abcdef0123456", 23));
    assert_false(ngx_feira_is_object_id("0123456789abcdef0123456g", 24));

    assert_int_equal(check("{\"email\":\"a@b.c\",\"role\":\"client\","
                           "\"owner\":\"xyz\"}", &errs), -1);
    assert_true(has_error(&errs, "owner", "hex id"));
}


static void
test_nul_in_string(void **state)
{
    json_t              *json;
    ngx_feira_errors_t   errs;

    memset(&errs, 0, sizeof(errs));

    json = json_pack("{s:s%, s:s}", "email", "a\0b", (size_t) 3,
                     "role", "client");
    assert_non_null(json);

    assert_int_equal(ngx_feira_validate_object(json, fields, &errs), -1);
    assert_true(has_error(&errs, "email", "NUL"));

    json_decref(json);
}


static void
test_deep_nesting(void **state)
{
    int     i;
    json_t  *root, *v;

    root = json_object();
    v = root;

    for (i = 0; i < 20; i++) {
        json_t *next = json_object();
        json_object_set_new(v, "a", next);
        v = next;
    }

    assert_false(ngx_feira_json_is_safe(root, 1));

    json_decref(root);
}


static void
test_errors_are_bounded(void **state)
{
    int                 i;
    char                key[16];
    json_t             *json;
    ngx_feira_errors_t  errs;

    memset(&errs, 0, sizeof(errs));
    json = json_object();

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        json_object_set_new(json, key, json_integer(i));
    }

    assert_int_equal(ngx_feira_validate_object(json, fields, &errs), -1);
    assert_int_equal(errs.n, NGX_FEIRA_MAX_ERRORS);

    json_decref(json);
}


static void
test_phone(void **state)
{
    assert_true(ngx_feira_is_phone("+55 11 91234-5678", 17));
    assert_true(ngx_feira_is_phone("(11) 1234567", 12));
    assert_false(ngx_feira_is_phone("123456", 6));
    assert_false(ngx_feira_is_phone("1234567890123456", 16));
    assert_false(ngx_feira_is_phone("55+11912345678", 14));
    assert_false(ngx_feira_is_phone("call me", 7));
    assert_false(ngx_feira_is_phone("", 0));
}


static int
page(const char *limit, const char *cursor, ngx_feira_page_t *p,
    ngx_feira_errors_t *errs)
{
    memset(errs, 0, sizeof(*errs));

    return ngx_feira_page_parse(limit, limit ? strlen(limit) : 0,
                                cursor, cursor ? strlen(cursor) : 0, p, errs);
}


static void
test_page(void **state)
{
    ngx_feira_page_t    p;
    ngx_feira_errors_t  errs;

    assert_int_equal(page(NULL, NULL, &p, &errs), 0);
    assert_int_equal(p.limit, NGX_FEIRA_PAGE_DEFAULT);
    assert_string_equal(p.cursor, "");

    assert_int_equal(page("1", "", &p, &errs), 0);
    assert_int_equal(p.limit, 1);
    assert_string_equal(p.cursor, "");

    assert_int_equal(page("100", "65A1B2C3D4E5F60718293A4B", &p, &errs), 0);
    assert_int_equal(p.limit, 100);
    assert_string_equal(p.cursor, "65a1b2c3d4e5f60718293a4b");

    assert_int_equal(page("0", NULL, &p, &errs), -1);
    assert_true(has_error(&errs, "limit", "from 1 to 100"));
    assert_int_equal(page("101", NULL, &p, &errs), -1);
    assert_int_equal(page("", NULL, &p, &errs), -1);
    assert_int_equal(page("-5", NULL, &p, &errs), -1);
    assert_int_equal(page("1e2", NULL, &p, &errs), -1);
    assert_int_equal(page("99999999999999999999", NULL, &p, &errs), -1);
    assert_int_equal(page(" 5", NULL, &p, &errs), -1);

    assert_int_equal(page(NULL, "abc", &p, &errs), -1);
    assert_true(has_error(&errs, "cursor", "not a valid cursor"));
    assert_int_equal(page(NULL, "65a1b2c3d4e5f60718293a4g", &p, &errs), -1);
    assert_int_equal(page(NULL, "%7B%22%24gt%22%3A1%7D", &p, &errs), -1);

    /* both wrong: both named */
    assert_int_equal(page("x", "y", &p, &errs), -1);
    assert_int_equal(errs.n, 2);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_body),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_required_and_null),
        cmocka_unit_test(test_operator_injection),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_lengths_count_characters),
        cmocka_unit_test(test_ranges_and_enums),
        cmocka_unit_test(test_object_id),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_errors_are_bounded),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_page),
    };

    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
