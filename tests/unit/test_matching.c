/*
 * Unit tests of the matching score, haversine distance, availability
 * windows, the offering profile codec and the time helpers
 * (ngx_feira_services_matching.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "ngx_feira_matching.h"


#define assert_near(a, b, eps)  assert_true(fabs((a) - (b)) <= (eps))


static ngx_feira_profile_t
profile(int64_t amount, double radius)
{
    ngx_feira_profile_t  p;

    memset(&p, 0, sizeof(p));
    memcpy(p.offering_id, "0123456789abcdef01234567", 25);
    memcpy(p.currency, "BRL", 4);
    p.amount = amount;
    p.radius_km = radius;

    return p;
}


static void
test_haversine(void **state)
{
    /* one degree of latitude: 2 pi R / 360 */
    assert_near(ngx_feira_haversine_km(0, 0, 1, 0), 111.195, 0.01);
    assert_near(ngx_feira_haversine_km(10, 20, 10, 20), 0.0, 1e-9);

    /* Sao Paulo (Se) to Rio de Janeiro (Centro): about 361 km */
    assert_near(ngx_feira_haversine_km(-23.5505, -46.6333, -22.9068,
                                       -43.1729), 361.0, 2.0);

    /* across the antimeridian, and antipodes */
    assert_near(ngx_feira_haversine_km(0, 179.5, 0, -179.5), 111.195, 0.01);
    assert_near(ngx_feira_haversine_km(0, 0, 0, 180),
                M_PI * NGX_FEIRA_EARTH_RADIUS_KM, 0.01);

    /* symmetric */
    assert_near(ngx_feira_haversine_km(-23.5, -46.6, -23.6, -46.7),
                ngx_feira_haversine_km(-23.6, -46.7, -23.5, -46.6), 1e-9);
}


static void
test_profile_roundtrip(void **state)
{
    char                 buf[NGX_FEIRA_PROFILE_LEN];
    size_t               n;
    ngx_feira_profile_t  p, q;

    p = profile(8000, 12.5);
    p.hourly = 1;
    p.nwindows = 2;
    p.windows[0].day = 1;
    p.windows[0].start = 480;
    p.windows[0].end = 1080;
    p.windows[1].day = 6;
    p.windows[1].start = 0;
    p.windows[1].end = 1440;

    n = ngx_feira_profile_format(&p, buf, sizeof(buf));
    assert_true(n > 0);
    assert_string_equal(buf, "0123456789abcdef01234567 8000 BRL h 12.500 "
                             "1:480-1080,6:0-1440");

    memset(&q, 0xff, sizeof(q));
    assert_int_equal(ngx_feira_profile_parse(buf, n, &q), 0);
    assert_string_equal(q.offering_id, p.offering_id);
    assert_int_equal(q.amount, 8000);
    assert_string_equal(q.currency, "BRL");
    assert_int_equal(q.hourly, 1);
    assert_near(q.radius_km, 12.5, 1e-9);
    assert_int_equal(q.nwindows, 2);
    assert_int_equal(q.windows[1].day, 6);
    assert_int_equal(q.windows[1].end, 1440);

    p.nwindows = 0;
    p.hourly = 0;
    n = ngx_feira_profile_format(&p, buf, sizeof(buf));
    assert_string_equal(buf, "0123456789abcdef01234567 8000 BRL f 12.500 -");
    assert_int_equal(ngx_feira_profile_parse(buf, n, &q), 0);
    assert_int_equal(q.nwindows, 0);

    /* too small a buffer is refused, never truncated */
    assert_int_equal(ngx_feira_profile_format(&p, buf, 20), 0);
}


static void
test_profile_garbage(void **state)
{
    size_t               i;
    ngx_feira_profile_t  q;

    static const char *bad[] = {
        "",
        "x",
        "0123456789abcdef01234567 8000 BRL h 12.5",
        "0123456789abcdef01234567 -5 BRL h 12.5 -",
        "0123456789abcdef01234567 80x BRL h 12.5 -",
        "0123456789abcdef01234567 8000 BRLX h 12.5 -",
        "0123456789abcdef01234567 8000 BRL x 12.5 -",
        "0123456789abcdef01234567 8000 BRL h 0 -",
        "0123456789abcdef01234567 8000 BRL h nan -",
        "0123456789abcdef01234567 8000 BRL h 5 7:0-60",
        "0123456789abcdef01234567 8000 BRL h 5 1:600-60",
        "0123456789abcdef01234567 8000 BRL h 5 1:0-1441",
        "0123456789abcdef01234567 8000 BRL h 5 1:0-60 extra",
        "0123456789abcdef01234567 8000 BRL h 5 1:0-60,",
        "0123456789abcdef01234567 8000 BRL h 5 1:0-60 ",
        "0123456789abcdef01234567  8000 BRL h 5 -",
        "0123456789abcdef01234567 8000 BRL h 5 1:-60",
        "short 8000 BRL h 5 -",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ngx_feira_profile_parse(bad[i], strlen(bad[i]), &q),
                         -1);
    }
}


static void
test_offers(void **state)
{
    int64_t  received, accepted;

    /* this month and the one before count; older months do not */
    assert_int_equal(ngx_feira_offers_parse("202612 5 2 202611 3 1", 21,
                                            202612, 202611, &received,
                                            &accepted), 0);
    assert_int_equal(received, 8);
    assert_int_equal(accepted, 3);

    assert_int_equal(ngx_feira_offers_parse("202612 5 2 202609 3 1", 21,
                                            202612, 202611, &received,
                                            &accepted), 0);
    assert_int_equal(received, 5);
    assert_int_equal(accepted, 2);

    assert_int_equal(ngx_feira_offers_parse("202611 4 4", 10, 202612,
                                            202611, &received, &accepted), 0);
    assert_int_equal(received, 4);
    assert_int_equal(accepted, 4);

    assert_int_equal(ngx_feira_offers_parse("202608 4 4", 10, 202612,
                                            202611, &received, &accepted), 0);
    assert_int_equal(received, 0);

    assert_int_equal(ngx_feira_offers_parse("202612 4", 8, 202612, 202611,
                                            &received, &accepted), -1);
    assert_int_equal(ngx_feira_offers_parse("202612 -4 1", 11, 202612,
                                            202611, &received, &accepted),
                     -1);
}


static void
test_availability(void **state)
{
    int64_t              t;
    ngx_feira_profile_t  p;

    p = profile(100, 10);
    p.nwindows = 1;
    p.windows[0].day = 2;           /* Tuesday */
    p.windows[0].start = 9 * 60;
    p.windows[0].end = 17 * 60;

    /* 2026-12-01 is a Tuesday */
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T09:00:00Z", 20, &t),
                     0);
    assert_int_equal(ngx_feira_weekday(t), 2);
    assert_true(ngx_feira_availability_covers(&p, t));

    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T16:59:59Z", 20, &t),
                     0);
    assert_true(ngx_feira_availability_covers(&p, t));

    /* the end is exclusive */
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T17:00:00Z", 20, &t),
                     0);
    assert_false(ngx_feira_availability_covers(&p, t));

    /* another day */
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-02T10:00:00Z", 20, &t),
                     0);
    assert_false(ngx_feira_availability_covers(&p, t));

    /* an offset moves it: 08:00-03:00 is 11:00Z on Tuesday */
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T08:00:00-03:00", 25,
                                             &t), 0);
    assert_true(ngx_feira_availability_covers(&p, t));

    /* no time asked: anyone online will do */
    assert_true(ngx_feira_availability_covers(&p, 0));

    p.nwindows = 0;
    assert_false(ngx_feira_availability_covers(&p, t));
}


static void
test_eligible(void **state)
{
    ngx_feira_profile_t        p;
    ngx_feira_match_request_t  rq;

    memset(&rq, 0, sizeof(rq));
    p = profile(100, 10);

    assert_true(ngx_feira_match_eligible(&rq, &p, 0.0));
    assert_true(ngx_feira_match_eligible(&rq, &p, 10.0));
    assert_false(ngx_feira_match_eligible(&rq, &p, 10.001));

    rq.scheduled_at = 1796119200;   /* a time no window covers */
    assert_false(ngx_feira_match_eligible(&rq, &p, 1.0));
}


static void
test_score_parts(void **state)
{
    ngx_feira_score_t          s;
    ngx_feira_profile_t        p;
    ngx_feira_match_request_t  rq;

    memset(&rq, 0, sizeof(rq));
    p = profile(10000, 20);

    /* at the door, best rating, no budget, never offered anything */
    ngx_feira_match_score(&rq, &p, 0.0, 5.0, 0, 0, &s);
    assert_near(s.distance, 1.0, 1e-12);
    assert_near(s.rating, 1.0, 1e-12);
    assert_near(s.price, 0.5, 1e-12);
    assert_near(s.acceptance, 0.5, 1e-12);
    assert_near(s.score, 0.4 + 0.3 + 0.1 + 0.05, 1e-12);

    /* the distance part halves at 5 km */
    ngx_feira_match_score(&rq, &p, 5.0, 0.0, 0, 0, &s);
    assert_near(s.distance, 0.5, 1e-12);
    ngx_feira_match_score(&rq, &p, 15.0, 0.0, 0, 0, &s);
    assert_near(s.distance, 0.25, 1e-12);

    /* ratings 1..5 map to 0..1; none is neutral */
    ngx_feira_match_score(&rq, &p, 0.0, 1.0, 0, 0, &s);
    assert_near(s.rating, 0.0, 1e-12);
    ngx_feira_match_score(&rq, &p, 0.0, 4.0, 0, 0, &s);
    assert_near(s.rating, 0.75, 1e-12);
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.rating, 0.5, 1e-12);

    /* price fit: within budget 1, linear to 0 at twice the budget */
    rq.has_budget = 1;
    memcpy(rq.currency, "BRL", 4);
    rq.budget = 10000;
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.price, 1.0, 1e-12);

    p.amount = 15000;
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.price, 0.5, 1e-12);

    p.amount = 25000;
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.price, 0.0, 1e-12);

    /* another currency cannot be compared */
    memcpy(rq.currency, "USD", 4);
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.price, 0.5, 1e-12);

    /* a zero budget: only free offerings fit */
    memcpy(rq.currency, "BRL", 4);
    rq.budget = 0;
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 0, 0, &s);
    assert_near(s.price, 0.0, 1e-12);

    /* acceptance, smoothed; nonsense counters are clamped */
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 8, 8, &s);
    assert_near(s.acceptance, 0.9, 1e-12);
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 8, 0, &s);
    assert_near(s.acceptance, 0.1, 1e-12);
    ngx_feira_match_score(&rq, &p, 0.0, 0.0, 2, 9, &s);
    assert_near(s.acceptance, 1.0 * 3 / 4, 1e-12);
}


static void
test_score_order(void **state)
{
    ngx_feira_score_t          near, far, cheap, dear;
    ngx_feira_profile_t        p;
    ngx_feira_match_request_t  rq;

    memset(&rq, 0, sizeof(rq));
    rq.has_budget = 1;
    rq.budget = 10000;
    memcpy(rq.currency, "BRL", 4);
    p = profile(9000, 30);

    /* all else equal, nearer wins; within budget beats over budget */
    ngx_feira_match_score(&rq, &p, 1.0, 4.0, 0, 0, &near);
    ngx_feira_match_score(&rq, &p, 8.0, 4.0, 0, 0, &far);
    assert_true(near.score > far.score);

    ngx_feira_match_score(&rq, &p, 2.0, 4.0, 0, 0, &cheap);
    p.amount = 18000;
    ngx_feira_match_score(&rq, &p, 2.0, 4.0, 0, 0, &dear);
    assert_true(cheap.score > dear.score);

    /* every score is within 0..1 */
    assert_true(dear.score >= 0.0 && cheap.score <= 1.0);
}


static void
test_hhmm(void **state)
{
    assert_int_equal(ngx_feira_parse_hhmm("00:00", 5, 0), 0);
    assert_int_equal(ngx_feira_parse_hhmm("08:30", 5, 0), 510);
    assert_int_equal(ngx_feira_parse_hhmm("23:59", 5, 0), 1439);
    assert_int_equal(ngx_feira_parse_hhmm("24:00", 5, 1), 1440);
    assert_int_equal(ngx_feira_parse_hhmm("24:00", 5, 0), -1);
    assert_int_equal(ngx_feira_parse_hhmm("24:01", 5, 1), -1);
    assert_int_equal(ngx_feira_parse_hhmm("12:60", 5, 0), -1);
    assert_int_equal(ngx_feira_parse_hhmm("8:30", 4, 0), -1);
    assert_int_equal(ngx_feira_parse_hhmm("08-30", 5, 0), -1);
    assert_int_equal(ngx_feira_parse_hhmm("0a:30", 5, 0), -1);
}


static void
test_rfc3339(void **state)
{
    char     buf[32];
    int64_t  t;

    assert_int_equal(ngx_feira_parse_rfc3339("1970-01-01T00:00:00Z", 20, &t),
                     0);
    assert_int_equal(t, 0);

    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T10:15:00Z", 20, &t),
                     0);
    assert_int_equal(t, 1796120100);
    assert_true(ngx_feira_format_rfc3339(t, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "2026-12-01T10:15:00Z");

    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T10:15:00.123Z", 24,
                                             &t), 0);
    assert_int_equal(t, 1796120100);

    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T07:15:00-03:00", 25,
                                             &t), 0);
    assert_int_equal(t, 1796120100);

    assert_int_equal(ngx_feira_parse_rfc3339("2028-02-29T00:00:00Z", 20, &t),
                     0);

    assert_int_equal(ngx_feira_parse_rfc3339("2027-02-29T00:00:00Z", 20, &t),
                     -1);
    assert_int_equal(ngx_feira_parse_rfc3339("2026-13-01T00:00:00Z", 20, &t),
                     -1);
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01 10:15:00Z", 20, &t),
                     -1);
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T10:15:00", 19, &t),
                     -1);
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T10:15:00+3", 21, &t),
                     -1);
    assert_int_equal(ngx_feira_parse_rfc3339("2026-12-01T10:15:00Zjunk", 24,
                                             &t), -1);
    assert_int_equal(ngx_feira_parse_rfc3339("tomorrow", 8, &t), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_haversine),
        cmocka_unit_test(test_profile_roundtrip),
        cmocka_unit_test(test_profile_garbage),
        cmocka_unit_test(test_offers),
        cmocka_unit_test(test_availability),
        cmocka_unit_test(test_eligible),
        cmocka_unit_test(test_score_parts),
        cmocka_unit_test(test_score_order),
        cmocka_unit_test(test_hhmm),
        cmocka_unit_test(test_rfc3339),
    };

    return cmocka_run_group_tests_name("matching", tests, NULL, NULL);
}
