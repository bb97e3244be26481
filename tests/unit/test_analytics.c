/*
 * Unit tests of the analytics worker's pure logic: the events it accepts
 * (and the ones it dead-letters), times and days, percentiles, and the
 * aggregates computed from facts (the same facts give the same document).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aw_agg.h"
#include "aw_event.h"


#define P   "65a1b2c3d4e5f60718293a4b"
#define P2  "65a1b2c3d4e5f60718293a4c"
#define C   "65a1b2c3d4e5f60718293a4d"
#define R   "65a1b2c3d4e5f60718293a4e"
#define ID  "6f1c2a9e0b7d4c3a8e5f1a2b"


static int
parse(const char *json, aw_event_t *ev)
{
    char  err[256];

    return aw_event_parse(json, strlen(json), ev, err, sizeof(err));
}


static void
test_accepted_event(void **state)
{
    aw_event_t  ev;

    (void) state;

    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"request.accepted\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"actor\":{\"id\":\"" P
        "\",\"role\":\"provider\"},\"data\":{\"request_id\":\"" R "\","
        "\"client_id\":\"" C "\",\"provider_id\":\"" P "\","
        "\"category\":\"plumbing\",\"from\":\"open\",\"to\":\"accepted\"}}",
        &ev), 0);
    assert_int_equal(ev.kind, AW_REQ_ACCEPTED);
    assert_string_equal(ev.day, "2026-12-01");
    assert_true(ev.at == INT64_C(1796120100000));
    assert_string_equal(ev.provider_id, P);
    assert_string_equal(ev.category, "plumbing");
    assert_string_equal(ev.actor_role, "provider");
}


static void
test_bad_events_are_refused(void **state)
{
    aw_event_t  ev;

    (void) state;

    /* not JSON, no id, an accept without its provider, a bad currency,
       a rating out of range, a category that is no slug, a bad date */
    assert_int_equal(parse("{", &ev), -1);
    assert_int_equal(parse("{\"id\":\"x\",\"type\":\"request.created\"}",
                           &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"request.accepted\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"data\":{\"request_id\":\""
        R "\",\"client_id\":\"" C "\",\"category\":\"x\"}}", &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"payment.succeeded\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"data\":{\"payment_id\":\""
        R "\",\"payer_id\":\"" C "\",\"payee_id\":\"" P "\",\"amount\":100,"
        "\"fee\":10,\"currency\":\"brl\"}}", &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"payment.succeeded\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"data\":{\"payment_id\":\""
        R "\",\"payer_id\":\"" C "\",\"payee_id\":\"" P "\",\"amount\":100,"
        "\"fee\":101,\"currency\":\"BRL\"}}", &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"review.created\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"data\":{\"reviewer_id\":\""
        C "\",\"reviewee_id\":\"" P "\",\"rating\":6}}", &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"request.created\","
        "\"occurred_at\":\"2026-12-01T10:15:00Z\",\"data\":{\"request_id\":\""
        R "\",\"client_id\":\"" C "\",\"category\":\"Plumb ing\"}}", &ev), -1);
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"request.created\","
        "\"occurred_at\":\"2026-02-30T10:15:00Z\",\"data\":{\"request_id\":\""
        R "\",\"client_id\":\"" C "\",\"category\":\"x\"}}", &ev), -1);

    /* a type nobody counts is done, whatever its data */
    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"payment.pending\"}",
                           &ev), 0);
    assert_int_equal(ev.kind, AW_IGNORED);
}


static void
test_offered_providers_once(void **state)
{
    aw_event_t  ev;

    (void) state;

    assert_int_equal(parse("{\"id\":\"" ID "\",\"type\":\"request.offered\","
        "\"occurred_at\":\"2026-12-01T10:15:00.250+01:00\",\"data\":{"
        "\"request_id\":\"" R "\",\"provider_ids\":[\"" P "\",\"" P2 "\",\""
        P "\"]}}", &ev), 0);
    assert_int_equal(ev.nproviders, 2);
    assert_string_equal(ev.providers[1], P2);
    /* 10:15:00.250 at +01:00 is 09:15:00.250 UTC */
    assert_true(ev.at == INT64_C(1796116500250));
}


static void
test_times_and_days(void **state)
{
    int64_t  ms;
    char     day[11];

    (void) state;

    assert_int_equal(aw_parse_time("2026-12-31T23:30:00-01:00", &ms), 0);
    aw_day_of(ms, day);
    assert_string_equal(day, "2027-01-01");
    assert_int_equal(aw_parse_time("2026-12-01", &ms), -1);
    assert_int_equal(aw_parse_time("2026-12-01T10:15:00", &ms), -1);
    assert_int_equal(aw_parse_time("2026-12-01T25:15:00Z", &ms), -1);
    assert_int_equal(aw_parse_time("2026-12-01T10:15:00Zx", &ms), -1);
}


static void
test_percentiles_nearest_rank(void **state)
{
    int64_t  one[] = { 7 };
    int64_t  two[] = { 120, 600 };
    int64_t  ten[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

    (void) state;

    assert_int_equal(aw_percentile(one, 1, 50), 7);
    assert_int_equal(aw_percentile(one, 1, 90), 7);
    assert_int_equal(aw_percentile(two, 2, 50), 120);
    assert_int_equal(aw_percentile(two, 2, 90), 600);
    assert_int_equal(aw_percentile(ten, 10, 50), 5);
    assert_int_equal(aw_percentile(ten, 10, 90), 9);
}


static int64_t
doc_int(bson_t *doc, const char *path)
{
    bson_iter_t  it;

    assert_true(bson_iter_init(&it, doc));
    assert_true(bson_iter_find_descendant(&it, path, &it));

    return bson_iter_as_int64(&it);
}


static double
doc_double(bson_t *doc, const char *path)
{
    bson_iter_t  it;

    assert_true(bson_iter_init(&it, doc));
    assert_true(bson_iter_find_descendant(&it, path, &it));
    assert_true(BSON_ITER_HOLDS_DOUBLE(&it));

    return bson_iter_double(&it);
}


static aw_fact_t
fact(int kind, const char *day, const char *provider)
{
    aw_fact_t  f;

    memset(&f, 0, sizeof(f));
    f.kind = kind;
    f.offer_ms = -1;
    f.response_ms = -1;
    snprintf(f.day, sizeof(f.day), "%s", day);
    snprintf(f.provider_id, sizeof(f.provider_id), "%s", provider);
    snprintf(f.client_id, sizeof(f.client_id), "%s", C);
    snprintf(f.category, sizeof(f.category), "plumbing");

    return f;
}


static void
test_provider_and_market_aggregates(void **state)
{
    char        offered[2][25];
    bson_t      doc, again;
    int64_t     used;
    aw_fact_t   f[8];

    (void) state;

    memcpy(offered[0], P, 25);
    memcpy(offered[1], P2, 25);

    f[0] = fact(AW_REQ_OFFERED, "2026-12-01", "");
    f[0].providers = offered;
    f[0].nproviders = 2;
    f[1] = fact(AW_REQ_ACCEPTED, "2026-12-01", P);
    f[1].offer_ms = 600000;
    f[2] = fact(AW_REQ_ACCEPTED, "2026-12-01", P);
    f[2].offer_ms = 120000;
    f[3] = fact(AW_PAY_SUCCEEDED, "2026-12-01", P);
    memcpy(f[3].currency, "BRL", 4);
    f[3].amount = 10000;
    f[3].fee = 1500;
    f[4] = fact(AW_PAY_REFUNDED, "2026-12-01", P);
    memcpy(f[4].currency, "BRL", 4);
    f[4].amount = 4000;
    f[4].fee = 600;
    f[5] = fact(AW_REVIEW_CREATED, "2026-12-01", P);
    f[5].rating = 4;
    f[6] = fact(AW_REQ_CREATED, "2026-12-01", "");
    /* another day: not counted */
    f[7] = fact(AW_REQ_ACCEPTED, "2026-12-02", P);

    bson_init(&doc);
    assert_int_equal(aw_agg_provider(f, 8, P, "2026-12-01", &doc, &used), 0);
    assert_int_equal(used, 6);
    assert_int_equal(doc_int(&doc, "offers"), 1);
    assert_int_equal(doc_int(&doc, "accepted"), 2);
    assert_true(doc_double(&doc, "acceptance_rate") == 2.0);
    assert_int_equal(doc_int(&doc, "offer_to_accept_ms.median"), 120000);
    assert_int_equal(doc_int(&doc, "offer_to_accept_ms.p90"), 600000);
    assert_int_equal(doc_int(&doc, "earnings.BRL.gross"), 6000);
    assert_int_equal(doc_int(&doc, "earnings.BRL.net"), 5100);
    assert_int_equal(doc_int(&doc, "rating_count"), 1);
    assert_true(doc_double(&doc, "rating_avg") == 4.0);

    /* the same facts in another order give the same document */
    {
        aw_fact_t  g[8];
        int        i;

        for (i = 0; i < 8; i++) {
            g[i] = f[7 - i];
        }

        bson_init(&again);
        assert_int_equal(aw_agg_provider(g, 8, P, "2026-12-01", &again,
                                         &used), 0);
        assert_int_equal(again.len, doc.len);
        assert_memory_equal(bson_get_data(&again), bson_get_data(&doc),
                            doc.len);
        bson_destroy(&again);
    }

    bson_destroy(&doc);

    bson_init(&doc);
    assert_int_equal(aw_agg_market(f, 8, "2026-12-01", &doc, &used), 0);
    assert_int_equal(doc_int(&doc, "requests_created"), 1);
    assert_int_equal(doc_int(&doc, "requests_by_category.plumbing"), 1);
    assert_int_equal(doc_int(&doc, "accepted"), 2);
    assert_true(doc_double(&doc, "fill_rate") == 2.0);
    assert_int_equal(doc_int(&doc, "gmv.BRL"), 6000);
    assert_int_equal(doc_int(&doc, "fees.BRL"), 900);
    assert_int_equal(doc_int(&doc, "active_clients"), 1);
    assert_int_equal(doc_int(&doc, "active_providers"), 1);
    bson_destroy(&doc);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_accepted_event),
        cmocka_unit_test(test_bad_events_are_refused),
        cmocka_unit_test(test_offered_providers_once),
        cmocka_unit_test(test_times_and_days),
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_provider_and_market_aggregates),
    };

    return cmocka_run_group_tests_name("analytics", tests, NULL, NULL);
}
