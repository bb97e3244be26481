/*
 * Unit tests of the workers' framework logic: backoff with jitter, the
 * token bucket, and the in-flight offsets of a partition.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fw_backoff.h"
#include "fw_offsets.h"


static void
test_backoff_grows_and_is_capped(void **state)
{
    /* with rnd 0 the delay is the lower half, with a huge rnd the top */
    assert_int_equal(fw_backoff_ms(1, 100, 10000, 0), 50);
    assert_int_equal(fw_backoff_ms(2, 100, 10000, 0), 100);
    assert_int_equal(fw_backoff_ms(3, 100, 10000, 0), 200);
    assert_int_equal(fw_backoff_ms(1, 100, 10000, 50), 100);
    assert_int_equal(fw_backoff_ms(4, 100, 10000, 400), 800);
    /* capped: 100 * 2^19 is far above the maximum */
    assert_int_equal(fw_backoff_ms(20, 100, 1000, 0), 500);
    assert_int_equal(fw_backoff_ms(20, 100, 1000, 500), 1000);
    /* attempt 0 counts as the first */
    assert_int_equal(fw_backoff_ms(0, 100, 1000, 0), 50);
}


static void
test_backoff_jitter_stays_in_range(void **state)
{
    int64_t   d;
    uint32_t  r;
    unsigned  a;

    for (a = 1; a < 12; a++) {
        for (r = 0; r < 100000; r += 7919) {
            d = fw_backoff_ms(a, 250, 30000, r * 2654435761u);
            assert_true(d >= 125);
            assert_true(d <= 30000);
        }
    }
}


static void
test_bucket_limits_rate(void **state)
{
    int          i, n;
    fw_bucket_t  b;

    fw_bucket_init(&b, 10, 5, 1000);

    /* the burst, then nothing until tokens come back */
    for (n = 0, i = 0; i < 20; i++) {
        n += fw_bucket_take(&b, 1000);
    }
    assert_int_equal(n, 5);
    assert_int_equal(fw_bucket_wait_ms(&b, 1000), 101);

    /* 10 per second: one more after 100 ms, five after a long pause */
    assert_int_equal(fw_bucket_take(&b, 1050), 0);
    assert_int_equal(fw_bucket_take(&b, 1100), 1);
    for (n = 0, i = 0; i < 20; i++) {
        n += fw_bucket_take(&b, 60000);
    }
    assert_int_equal(n, 5);

    /* rate 0: unlimited */
    fw_bucket_init(&b, 0, 1, 0);
    for (i = 0; i < 1000; i++) {
        assert_int_equal(fw_bucket_take(&b, 0), 1);
    }
    assert_int_equal(fw_bucket_wait_ms(&b, 0), 0);
}


static void
test_offsets_commit_only_the_finished_prefix(void **state)
{
    int64_t       c;
    fw_offsets_t  t;

    fw_offsets_init(&t);

    assert_int_equal(fw_offsets_add(&t, 10), 0);
    assert_int_equal(fw_offsets_add(&t, 11), 0);
    assert_int_equal(fw_offsets_add(&t, 13), 0);     /* gaps happen */
    assert_int_equal(fw_offsets_add(&t, 12), -1);    /* never backwards */

    /* later ones finish first: nothing is committable yet */
    assert_int_equal(fw_offsets_done(&t, 13), 0);
    assert_int_equal(fw_offsets_done(&t, 11), 0);
    assert_int_equal(fw_offsets_take(&t, &c), 0);
    assert_int_equal(fw_offsets_pending(&t), 3);

    /* the first finishes: the whole prefix goes */
    assert_int_equal(fw_offsets_done(&t, 10), 0);
    assert_int_equal(fw_offsets_take(&t, &c), 1);
    assert_int_equal(c, 14);
    assert_int_equal(fw_offsets_take(&t, &c), 0);
    assert_int_equal(fw_offsets_pending(&t), 0);

    /* unknown or repeated offsets are refused */
    assert_int_equal(fw_offsets_done(&t, 10), -1);
    assert_int_equal(fw_offsets_done(&t, 99), -1);

    fw_offsets_free(&t);
}


static void
test_offsets_many_out_of_order(void **state)
{
    int64_t       i, c;
    fw_offsets_t  t;

    fw_offsets_init(&t);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(fw_offsets_add(&t, i), 0);
    }

    /* the odd ones, then the even ones from the top */
    for (i = 1; i < 1000; i += 2) {
        assert_int_equal(fw_offsets_done(&t, i), 0);
    }
    for (i = 998; i > 0; i -= 2) {
        assert_int_equal(fw_offsets_done(&t, i), 0);
    }
    assert_int_equal(fw_offsets_take(&t, &c), 0);

    assert_int_equal(fw_offsets_done(&t, 0), 0);
    assert_int_equal(fw_offsets_take(&t, &c), 1);
    assert_int_equal(c, 1000);

    /* the array is reused after it emptied; every third is done early */
    for (i = 1000; i < 3000; i++) {
        assert_int_equal(fw_offsets_add(&t, i), 0);
        if (i % 3 == 0) {
            assert_int_equal(fw_offsets_done(&t, i), 0);
        }
    }
    assert_int_equal(fw_offsets_take(&t, &c), 0);
    assert_int_equal(fw_offsets_done(&t, 1002), -1);  /* done already */
    assert_int_equal(fw_offsets_done(&t, 1000), 0);
    assert_int_equal(fw_offsets_take(&t, &c), 1);
    assert_int_equal(c, 1001);
    assert_int_equal(fw_offsets_done(&t, 1001), 0);
    assert_int_equal(fw_offsets_take(&t, &c), 1);
    assert_int_equal(c, 1003);

    fw_offsets_free(&t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_backoff_grows_and_is_capped),
        cmocka_unit_test(test_backoff_jitter_stays_in_range),
        cmocka_unit_test(test_bucket_limits_rate),
        cmocka_unit_test(test_offsets_commit_only_the_finished_prefix),
        cmocka_unit_test(test_offsets_many_out_of_order),
    };

    return cmocka_run_group_tests_name("worker common", tests, NULL, NULL);
}
