/*
 * Unit tests of what feira_chat accepts from clients
 * (nginx-modules/chat/ngx_feira_chat_input.c): UTF-8 counted in code
 * points, client_msg_id, message bodies and WebSocket messages, pages.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_chat_input.h"


static json_t *
load(const char *text)
{
    json_t        *json;
    json_error_t   error;

    json = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    assert_non_null(json);

    return json;
}


static int
check(const char *text, ngx_feira_chat_input_e what, size_t max,
    const char *field)
{
    int                  rc;
    size_t               i;
    json_t              *json;
    ngx_feira_errors_t   errs;

    memset(&errs, 0, sizeof(errs));
    json = load(text);
    rc = ngx_feira_chat_check(json, what, max, &errs);
    json_decref(json);

    if (field == NULL) {
        return rc == 0 && errs.n == 0;
    }

    for (i = 0; i < errs.n; i++) {
        if (strcmp(errs.items[i].field, field) == 0) {
            return rc != 0;
        }
    }

    return 0;
}


static void
test_utf8_count(void **state)
{
    (void) state;

    assert_int_equal(ngx_feira_chat_utf8_count("", 0), 0);
    assert_int_equal(ngx_feira_chat_utf8_count("abc", 3), 3);
    /* é (2 bytes), ☃ (3), 😀 (4) */
    assert_int_equal(ngx_feira_chat_utf8_count("\xc3\xa9", 2), 1);
    assert_int_equal(ngx_feira_chat_utf8_count("\xe2\x98\x83", 3), 1);
    assert_int_equal(ngx_feira_chat_utf8_count("\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal(ngx_feira_chat_utf8_count("a\xc3\xa9\xf0\x9f\x98\x80",
                                               7), 3);

    /* truncated, stray continuation, overlong, surrogate, too high */
    assert_true(ngx_feira_chat_utf8_count("\xc3", 1) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\x80", 1) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xc0\xaf", 2) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xe0\x80\xaf", 3) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xed\xa0\x80", 3) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xf4\x90\x80\x80", 4)
                == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xff", 1) == (size_t) -1);
    assert_true(ngx_feira_chat_utf8_count("\xe2\x98", 2) == (size_t) -1);
}


static void
test_cmid(void **state)
{
    char  long_id[66];

    (void) state;

    assert_true(ngx_feira_chat_cmid_valid("a", 1));
    assert_true(ngx_feira_chat_cmid_valid("550e8400-e29b:41d4.a_7", 22));
    assert_false(ngx_feira_chat_cmid_valid("", 0));
    assert_false(ngx_feira_chat_cmid_valid("a b", 3));
    assert_false(ngx_feira_chat_cmid_valid("$ne", 3));
    assert_false(ngx_feira_chat_cmid_valid("a\0b", 3));
    assert_false(ngx_feira_chat_cmid_valid("\xc3\xa9", 2));

    memset(long_id, 'x', sizeof(long_id));
    assert_true(ngx_feira_chat_cmid_valid(long_id, 64));
    assert_false(ngx_feira_chat_cmid_valid(long_id, 65));
}


static void
test_send_body(void **state)
{
    (void) state;

    assert_true(check("{\"text\":\"oi\",\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, NULL));
    assert_true(check("{\"text\":\"oi\",\"client_msg_id\":\"1\","
                      "\"to\":\"65a1b2c3d4e5f60718293a4b\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, NULL));

    /* the bound is in characters: three snowmen are three */
    assert_true(check("{\"text\":\"\\u2603\\u2603\\u2603\","
                      "\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 3, NULL));
    assert_true(check("{\"text\":\"\\u2603\\u2603\\u2603\\u2603\","
                      "\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 3, "text"));

    assert_true(check("{\"text\":\"\",\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "text"));
    assert_true(check("{\"text\":1,\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "text"));
    assert_true(check("{\"text\":{\"$ne\":null},\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "text"));
    assert_true(check("{\"text\":\"x\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "client_msg_id"));
    assert_true(check("{\"text\":\"x\",\"client_msg_id\":\"a b\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "client_msg_id"));
    assert_true(check("{\"text\":\"x\",\"client_msg_id\":\"1\","
                      "\"$where\":1}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "$where"));
    assert_true(check("{\"text\":\"x\",\"client_msg_id\":\"1\","
                      "\"from\":\"65a1b2c3d4e5f60718293a4b\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "from"));
    assert_true(check("{\"text\":\"x\",\"client_msg_id\":\"1\","
                      "\"to\":\"zz\"}",
                      NGX_FEIRA_CHAT_IN_SEND, 4000, "to"));
    assert_true(check("[]", NGX_FEIRA_CHAT_IN_SEND, 4000, ""));
}


static void
test_ws_messages(void **state)
{
    (void) state;

    assert_true(check("{\"type\":\"chat\","
                      "\"request_id\":\"65a1b2c3d4e5f60718293a4b\","
                      "\"text\":\"x\",\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_WS_CHAT, 4000, NULL));
    assert_true(check("{\"type\":\"chat\",\"request_id\":\"x\","
                      "\"text\":\"x\",\"client_msg_id\":\"1\"}",
                      NGX_FEIRA_CHAT_IN_WS_CHAT, 4000, "request_id"));
    assert_true(check("{\"type\":\"typing\","
                      "\"request_id\":\"65a1b2c3d4e5f60718293a4b\"}",
                      NGX_FEIRA_CHAT_IN_WS_TYPING, 4000, NULL));
    assert_true(check("{\"type\":\"typing\","
                      "\"request_id\":\"65a1b2c3d4e5f60718293a4b\","
                      "\"text\":\"x\"}",
                      NGX_FEIRA_CHAT_IN_WS_TYPING, 4000, "text"));
    assert_true(check("{\"type\":\"read\","
                      "\"request_id\":\"65a1b2c3d4e5f60718293a4b\","
                      "\"message_id\":\"65a1b2c3d4e5f60718293a4c\"}",
                      NGX_FEIRA_CHAT_IN_WS_READ, 4000, NULL));
    assert_true(check("{\"type\":\"read\","
                      "\"request_id\":\"65a1b2c3d4e5f60718293a4b\"}",
                      NGX_FEIRA_CHAT_IN_WS_READ, 4000, "message_id"));
    assert_true(check("{\"up_to\":\"65a1b2c3d4e5f60718293a4b\"}",
                      NGX_FEIRA_CHAT_IN_READ, 4000, NULL));
    assert_true(check("{\"up_to\":{\"$gt\":\"\"}}",
                      NGX_FEIRA_CHAT_IN_READ, 4000, "up_to"));
}


static void
test_pages(void **state)
{
    char                before[25];
    size_t              limit;
    ngx_feira_errors_t  errs;

    (void) state;

    memset(&errs, 0, sizeof(errs));

    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, NULL, 0, before,
                                               &limit, &errs), 0);
    assert_string_equal(before, "");
    assert_int_equal(limit, 20);

    assert_int_equal(ngx_feira_chat_page_parse("65A1B2C3D4E5F60718293A4B",
                                               24, "100", 3, before, &limit,
                                               &errs), 0);
    assert_string_equal(before, "65a1b2c3d4e5f60718293a4b");
    assert_int_equal(limit, 100);

    assert_int_equal(ngx_feira_chat_page_parse("65a1", 4, NULL, 0, before,
                                               &limit, &errs), -1);
    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, "0", 1, before,
                                               &limit, &errs), -1);
    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, "101", 3, before,
                                               &limit, &errs), -1);
    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, "99999999999999999",
                                               17, before, &limit, &errs),
                     -1);
    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, "1x", 2, before,
                                               &limit, &errs), -1);
    assert_int_equal(ngx_feira_chat_page_parse(NULL, 0, "", 0, before,
                                               &limit, &errs), -1);
    assert_int_equal(errs.n, 6);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_count),
        cmocka_unit_test(test_cmid),
        cmocka_unit_test(test_send_body),
        cmocka_unit_test(test_ws_messages),
        cmocka_unit_test(test_pages),
    };

    return cmocka_run_group_tests_name("chat input", tests, NULL, NULL);
}
