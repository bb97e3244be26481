/*
 * Unit tests of the stored-document views and the updates of feira_users
 * (nginx-modules/users/ngx_feira_users_bson.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_users_bson.h"


static bson_t *
stored_user(const char *role)
{
    bson_t      *doc;
    bson_oid_t   oid;

    bson_oid_init_from_string(&oid, "65a1b2c3d4e5f60718293a4b");

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "email", BCON_UTF8("Ana@Example.com"),
                   "email_lc", BCON_UTF8("ana@example.com"),
                   "password_hash", BCON_UTF8("$argon2id$v=19$secret"),
                   "name", BCON_UTF8("Ana"),
                   "role", BCON_UTF8(role),
                   "phone", BCON_UTF8("+55 11 91234-5678"),
                   "bio", BCON_UTF8("hello"),
                   "skills", "[", BCON_UTF8("plumbing"), "]",
                   "service_area", "{",
                       "lat", BCON_DOUBLE(-23.5),
                       "lng", BCON_DOUBLE(-46.625),
                       "radius_km", BCON_DOUBLE(10),
                   "}",
                   "rating_avg", BCON_DOUBLE(1.0),
                   "rating_count", BCON_INT32(1),
                   "rating_sum", BCON_INT64(1),
                   "preferences", "{", "language", BCON_UTF8("en"), "}",
                   "created_at", BCON_DATE_TIME(1764583200000LL));

    return doc;
}


static char *
dump(json_t *json)
{
    char  *text;

    text = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);

    return text;
}


static void
test_public_view_is_an_allow_list(void **state)
{
    char    *text;
    bson_t  *doc;
    json_t  *view;

    doc = stored_user("client");
    view = ngx_feira_users_profile_view(doc, 0, 0, 0);
    assert_non_null(view);

    text = dump(view);
    assert_string_equal(text,
        "{\"avatar_url\":null,\"bio\":\"hello\","
        "\"created_at\":\"2025-12-01T10:00:00Z\","
        "\"id\":\"65a1b2c3d4e5f60718293a4b\",\"name\":\"Ana\","
        "\"rating_avg\":0.0,\"rating_count\":0,\"role\":\"client\"}");

    free(text);
    json_decref(view);
    bson_destroy(doc);
}


static void
test_private_view_of_a_provider(void **state)
{
    char    *text;
    bson_t  *doc;
    json_t  *view;

    doc = stored_user("provider");

    /* the rating comes from the ledger, not the stored copy */
    view = ngx_feira_users_profile_view(doc, 1, 4, 14);
    assert_non_null(view);

    text = dump(view);
    assert_null(strstr(text, "password"));
    assert_null(strstr(text, "argon2"));
    assert_null(strstr(text, "email_lc"));
    assert_null(strstr(text, "preferences"));
    assert_non_null(strstr(text, "\"email\":\"Ana@Example.com\""));
    assert_non_null(strstr(text, "\"phone\":\"+55 11 91234-5678\""));
    assert_non_null(strstr(text, "\"rating_avg\":3.5"));
    assert_non_null(strstr(text, "\"rating_count\":4"));
    assert_non_null(strstr(text, "\"skills\":[\"plumbing\"]"));
    assert_non_null(strstr(text, "\"service_area\":{\"lat\":-23.5,"
                                 "\"lng\":-46.625,\"radius_km\":10.0}"));

    free(text);
    json_decref(view);
    bson_destroy(doc);
}


static void
test_broken_documents_are_refused(void **state)
{
    bson_t  *doc;

    doc = BCON_NEW("name", BCON_UTF8("no id"), "role", BCON_UTF8("client"));
    assert_null(ngx_feira_users_profile_view(doc, 1, 0, 0));
    bson_destroy(doc);

    doc = BCON_NEW("_id", BCON_UTF8("65a1b2c3d4e5f60718293a4b"),
                   "role", BCON_UTF8("client"));
    assert_null(ngx_feira_users_profile_view(doc, 1, 0, 0));
    bson_destroy(doc);
}


static void
test_preferences_defaults(void **state)
{
    char    *text;
    bson_t  *doc;
    json_t  *view;

    doc = BCON_NEW("name", BCON_UTF8("x"));
    view = ngx_feira_users_preferences_view(doc);
    text = dump(view);
    assert_string_equal(text,
        "{\"language\":\"pt-BR\",\"notifications\":{\"email\":true,"
        "\"push\":true,\"sms\":false},\"quiet_hours\":null}");
    free(text);
    json_decref(view);
    bson_destroy(doc);

    /* a partial document: what is there, defaults for the rest */
    doc = stored_user("client");
    view = ngx_feira_users_preferences_view(doc);
    text = dump(view);
    assert_string_equal(text,
        "{\"language\":\"en\",\"notifications\":{\"email\":true,"
        "\"push\":true,\"sms\":false},\"quiet_hours\":null}");
    free(text);
    json_decref(view);
    bson_destroy(doc);
}


static void
test_preferences_round_trip(void **state)
{
    char           *text;
    bson_t         *update, set;
    json_t         *body, *view;
    uint32_t        len;
    bson_iter_t     it;
    json_error_t    error;
    const uint8_t  *data;

    body = json_loads("{\"notifications\":{\"email\":false,\"sms\":true,"
                      "\"push\":false},\"language\":\"en\",\"quiet_hours\":"
                      "{\"start\":\"22:00\",\"end\":\"07:00\","
                      "\"tz\":\"America/Sao_Paulo\"}}", 0, &error);
    assert_non_null(body);

    update = ngx_feira_users_preferences_update(body, 1000);
    assert_non_null(update);

    assert_true(bson_iter_init_find(&it, update, "$set"));
    bson_iter_document(&it, &len, &data);
    assert_true(bson_init_static(&set, data, len));

    assert_true(bson_has_field(&set, "updated_at"));
    assert_true(bson_has_field(&set, "preferences.notifications.sms"));
    assert_true(bson_has_field(&set, "preferences.quiet_hours.tz"));

    view = ngx_feira_users_preferences_view(&set);
    text = dump(view);
    assert_string_equal(text,
        "{\"language\":\"en\",\"notifications\":{\"email\":false,"
        "\"push\":false,\"sms\":true},\"quiet_hours\":{\"end\":\"07:00\","
        "\"start\":\"22:00\",\"tz\":\"America/Sao_Paulo\"}}");

    free(text);
    json_decref(view);
    json_decref(body);
    bson_destroy(update);
}


static void
test_patch_update(void **state)
{
    char          *text;
    bson_t        *update;
    json_t        *body;
    json_error_t   error;

    body = json_loads("{\"name\":\"Ana\",\"bio\":null,\"skills\":[\"a\",\"b\"],"
                      "\"service_area\":{\"lat\":1,\"lng\":2.5,"
                      "\"radius_km\":3}}", 0, &error);
    assert_non_null(body);

    update = ngx_feira_users_patch_update(body, 0);
    assert_non_null(update);

    text = bson_as_relaxed_extended_json(update, NULL);
    assert_string_equal(text,
        "{ \"$set\" : { \"name\" : \"Ana\", \"skills\" : [ \"a\", \"b\" ], "
        "\"service_area\" : { \"lat\" : 1.0, \"lng\" : 2.5, "
        "\"radius_km\" : 3.0 }, \"updated_at\" : "
        "{ \"$date\" : \"1970-01-01T00:00:00Z\" } }, "
        "\"$unset\" : { \"bio\" : \"\" } }");

    bson_free(text);
    bson_destroy(update);
    json_decref(body);

    /* only the editable names are ever written, whatever the body holds */
    body = json_loads("{\"phone\":\"1234567\",\"role\":\"admin\"}", 0,
                      &error);
    update = ngx_feira_users_patch_update(body, 0);
    assert_non_null(update);
    assert_true(bson_has_field(update, "$set.phone"));
    assert_false(bson_has_field(update, "$set.role"));
    assert_false(bson_has_field(update, "$unset"));

    bson_destroy(update);
    json_decref(body);
}


static void
test_review_and_device_views(void **state)
{
    char        *text;
    bson_t      *doc;
    json_t      *view;
    bson_oid_t   a, b, c, d;

    bson_oid_init_from_string(&a, "000000000000000000000001");
    bson_oid_init_from_string(&b, "000000000000000000000002");
    bson_oid_init_from_string(&c, "000000000000000000000003");
    bson_oid_init_from_string(&d, "000000000000000000000004");

    doc = BCON_NEW("_id", BCON_OID(&a), "request_id", BCON_OID(&b),
                   "reviewer_id", BCON_OID(&c), "reviewee_id", BCON_OID(&d),
                   "reviewer_role", BCON_UTF8("client"),
                   "rating", BCON_INT32(4), "comment", BCON_UTF8("ok"),
                   "created_at", BCON_DATE_TIME(0),
                   "seq", BCON_INT64(7), "rating_sum", BCON_INT64(30));

    view = ngx_feira_users_review_view(doc);
    text = dump(view);
    assert_string_equal(text,
        "{\"comment\":\"ok\",\"created_at\":\"1970-01-01T00:00:00Z\","
        "\"id\":\"000000000000000000000001\","
        "\"rating\":4,\"request_id\":\"000000000000000000000002\","
        "\"reviewee_id\":\"000000000000000000000004\","
        "\"reviewer_id\":\"000000000000000000000003\","
        "\"reviewer_role\":\"client\"}");
    free(text);
    json_decref(view);
    bson_destroy(doc);

    doc = BCON_NEW("_id", BCON_OID(&a), "user_id", BCON_OID(&b),
                   "platform", BCON_UTF8("ios"), "token", BCON_UTF8("t"),
                   "created_at", BCON_DATE_TIME(0));
    view = ngx_feira_users_device_view(doc);
    text = dump(view);
    assert_string_equal(text,
        "{\"created_at\":\"1970-01-01T00:00:00Z\","
        "\"id\":\"000000000000000000000001\",\"platform\":\"ios\","
        "\"token\":\"t\"}");
    free(text);
    json_decref(view);
    bson_destroy(doc);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_view_is_an_allow_list),
        cmocka_unit_test(test_private_view_of_a_provider),
        cmocka_unit_test(test_broken_documents_are_refused),
        cmocka_unit_test(test_preferences_defaults),
        cmocka_unit_test(test_preferences_round_trip),
        cmocka_unit_test(test_patch_update),
        cmocka_unit_test(test_review_and_device_views),
    };

    return cmocka_run_group_tests_name("users bson", tests, NULL, NULL);
}
