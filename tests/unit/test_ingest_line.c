/*
 * The TCP location ingest's line parser: commands, arguments, the
 * answers' reasons, and the time tolerance.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_ingest_line.h"


#define NOW  1764583200000LL


static int
parse(const char *text, ngx_feira_ingest_line_t *line)
{
    return ngx_feira_ingest_parse((const unsigned char *) text, strlen(text),
                                  NOW, line);
}


static void
test_empty_lines_are_ignored(void **state)
{
    ngx_feira_ingest_line_t  l;

    assert_int_equal(parse("", &l), NGX_FEIRA_INGEST_EMPTY);
    assert_int_equal(parse("\r", &l), NGX_FEIRA_INGEST_EMPTY);
    assert_null(l.error);
}


static void
test_auth_takes_the_token_trimmed(void **state)
{
    ngx_feira_ingest_line_t  l;

    assert_int_equal(parse("AUTH   abc.def.ghi  \r", &l),
                     NGX_FEIRA_INGEST_AUTH);
    assert_null(l.error);
    assert_int_equal(l.token_len, 11);
    assert_memory_equal(l.token, "abc.def.ghi", 11);

    assert_int_equal(parse("AUTH    ", &l), NGX_FEIRA_INGEST_AUTH);
    assert_string_equal(l.error, "invalid_token");

    /* the command needs its space and an argument */
    assert_int_equal(parse("AUTH", &l), NGX_FEIRA_INGEST_UNKNOWN);
    assert_int_equal(parse("AUTH ", &l), NGX_FEIRA_INGEST_UNKNOWN);
    assert_int_equal(parse("auth x", &l), NGX_FEIRA_INGEST_UNKNOWN);
    assert_string_equal(l.error, "unknown_command");
}


static void
test_loc_positions(void **state)
{
    ngx_feira_ingest_line_t  l;

    assert_int_equal(parse("LOC -23.5505 -46.6333", &l),
                     NGX_FEIRA_INGEST_LOC);
    assert_null(l.error);
    assert_true(l.lat == -23.5505 && l.lng == -46.6333);
    assert_int_equal(l.at_ms, 0);

    assert_int_equal(parse("LOC  90   180  ", &l), NGX_FEIRA_INGEST_LOC);
    assert_null(l.error);

    assert_int_equal(parse("LOC 1e1 -2E1", &l), NGX_FEIRA_INGEST_LOC);
    assert_null(l.error);
    assert_true(l.lat == 10 && l.lng == -20);
}


static void
test_loc_refuses_what_is_not_on_earth(void **state)
{
    const char               **t;
    ngx_feira_ingest_line_t    l;

    static const char  *bad[] = {
        "LOC 90.0001 0", "LOC 0 -180.5", "LOC 1", "LOC x y", "LOC 1,2 3",
        "LOC nan 0", "LOC inf 0", "LOC 1e999 0", "LOC -- 0", "LOC 0x10 0",
        "LOC 1..2 0", "LOC 000000000000000000000000000000001 0", "LOC  ",
        NULL
    };

    for (t = bad; *t; t++) {
        assert_int_equal(parse(*t, &l), NGX_FEIRA_INGEST_LOC);
        assert_non_null(l.error);
        assert_string_equal(l.error, "bad_location");
    }
}


static void
test_loc_time_within_the_tolerance(void **state)
{
    char                     buf[128];
    ngx_feira_ingest_line_t  l;

    snprintf(buf, sizeof(buf), "LOC 1 2 %lld", NOW - 1000);
    parse(buf, &l);
    assert_null(l.error);
    assert_int_equal(l.at_ms, NOW - 1000);

    snprintf(buf, sizeof(buf), "LOC 1 2 %lld",
             NOW + NGX_FEIRA_INGEST_MAX_SKEW + 1);
    parse(buf, &l);
    assert_string_equal(l.error, "bad_time");
    assert_int_equal(l.at_ms, 0);

    snprintf(buf, sizeof(buf), "LOC 1 2 %lld",
             NOW - NGX_FEIRA_INGEST_MAX_AGE - 1);
    parse(buf, &l);
    assert_string_equal(l.error, "bad_time");

    parse("LOC 1 2 1764583200000.5", &l);
    assert_string_equal(l.error, "bad_time");
    parse("LOC 1 2 -1", &l);
    assert_string_equal(l.error, "bad_time");
    parse("LOC 1 2 1764583200000 4", &l);
    assert_string_equal(l.error, "bad_time");
    parse("LOC 1 2 1e300", &l);
    assert_string_equal(l.error, "bad_time");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_lines_are_ignored),
        cmocka_unit_test(test_auth_takes_the_token_trimmed),
        cmocka_unit_test(test_loc_positions),
        cmocka_unit_test(test_loc_refuses_what_is_not_on_earth),
        cmocka_unit_test(test_loc_time_within_the_tolerance),
    };

    return cmocka_run_group_tests_name("ingest_line", tests, NULL, NULL);
}
