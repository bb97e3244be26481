/*
 * Unit tests of what feira_users accepts from clients
 * (nginx-modules/users/ngx_feira_users_input.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_users_input.h"


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


static int
patch(const char *text, int *provider_only, ngx_feira_errors_t *errs)
{
    int      rc;
    json_t  *json;

    memset(errs, 0, sizeof(*errs));

    json = load(text);
    rc = ngx_feira_users_patch_check(json, provider_only, errs);
    json_decref(json);

    return rc;
}


static int
prefs(const char *text, ngx_feira_errors_t *errs)
{
    int      rc;
    json_t  *json;

    memset(errs, 0, sizeof(*errs));

    json = load(text);
    rc = ngx_feira_users_preferences_check(json, errs);
    json_decref(json);

    return rc;
}


static int
path(const char *s, ngx_feira_users_path_t *p)
{
    return ngx_feira_users_parse_path(s, strlen(s), p);
}


#define ID  "65a1b2c3d4e5f60718293a4b"


static void
test_paths(void **state)
{
    ngx_feira_users_path_t  p;

    assert_int_equal(path(ID, &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_PROFILE);
    assert_int_equal(p.id_len, 24);
    assert_memory_equal(p.id, ID, 24);

    assert_int_equal(path(ID "/preferences", &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_PREFERENCES);

    assert_int_equal(path(ID "/devices", &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_DEVICES);

    assert_int_equal(path(ID "/reviews", &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_REVIEWS);

    assert_int_equal(path(ID "/devices/abc", &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_DEVICE);
    assert_int_equal(p.item_len, 3);
    assert_memory_equal(p.item, "abc", 3);

    /* ids are checked later (400); the shape here (404) */
    assert_int_equal(path("not-an-id", &p), 0);
    assert_int_equal(p.route, NGX_FEIRA_USERS_PROFILE);

    assert_int_equal(path("", &p), -1);
    assert_int_equal(path(ID "/", &p), -1);
    assert_int_equal(path(ID "//devices", &p), -1);
    assert_int_equal(path(ID "/settings", &p), -1);
    assert_int_equal(path(ID "/Devices", &p), -1);
    assert_int_equal(path(ID "/preferences/x", &p), -1);
    assert_int_equal(path(ID "/devices/x/y", &p), -1);
    assert_int_equal(path(ID "/devices/", &p), -1);
    assert_int_equal(path("/" ID, &p), -1);
}


static void
test_parent_segment(void **state)
{
    size_t       len;
    const char  *seg, *uri;

    uri = "/v1/requests/" ID "/reviews";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), 0);
    assert_int_equal(len, 24);
    assert_memory_equal(seg, ID, 24);

    uri = "/x/y";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(seg, "x", 1);

    uri = "/v1/requests//reviews";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), -1);
    uri = "/v1/requests/" ID "/reviews/";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), -1);
    uri = "/reviews";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), -1);
    uri = "reviews";
    assert_int_equal(ngx_feira_users_parent_segment(uri, strlen(uri), &seg,
                                                    &len), -1);
    assert_int_equal(ngx_feira_users_parent_segment("", 0, &seg, &len), -1);
}


static void
test_patch_allow_list(void **state)
{
    int                 provider_only;
    ngx_feira_errors_t  errs;

    assert_int_equal(patch("{\"name\":\"Ana\",\"bio\":\"\",\"phone\":"
                           "\"+55 11 91234-5678\",\"avatar_url\":"
                           "\"https://cdn.example.com/a.png\"}",
                           &provider_only, &errs), 0);
    assert_int_equal(provider_only, 0);

    assert_int_equal(patch("{\"skills\":[\"plumbing\",\"tiles\"],"
                           "\"service_area\":{\"label\":\"Centro\","
                           "\"lat\":-23.5,\"lng\":-46.6,\"radius_km\":10}}",
                           &provider_only, &errs), 0);
    assert_int_equal(provider_only, 1);

    /* null removes an optional field */
    assert_int_equal(patch("{\"bio\":null,\"phone\":null,\"skills\":null}",
                           &provider_only, &errs), 0);
    assert_int_equal(provider_only, 1);
}


static void
test_patch_mass_assignment(void **state)
{
    int                 provider_only;
    ngx_feira_errors_t  errs;

    const char  *protected[] = {
        "{\"role\":\"admin\"}", "{\"rating_avg\":5}", "{\"rating_count\":9}",
        "{\"email\":\"x@y.z\"}", "{\"_id\":\"" ID "\"}",
        "{\"password_hash\":\"x\"}", "{\"email_lc\":\"x\"}",
        "{\"created_at\":\"x\"}", "{\"preferences\":{}}", "{\"id\":\"x\"}",
        NULL
    };
    const char  **p;

    for (p = protected; *p; p++) {
        assert_int_equal(patch(*p, &provider_only, &errs), -1);
        assert_int_equal(errs.n, 1);
        assert_string_equal(errs.items[0].message, "may not be changed");
    }

    /* one protected field among valid ones still refuses the whole body */
    assert_int_equal(patch("{\"name\":\"Ana\",\"role\":\"admin\"}",
                           &provider_only, &errs), -1);
    assert_true(has_error(&errs, "role", "may not be changed"));
    assert_int_equal(errs.n, 1);

    assert_int_equal(patch("{\"nickname\":\"x\"}", &provider_only, &errs),
                     -1);
    assert_true(has_error(&errs, "nickname", "unknown field"));

    assert_int_equal(patch("{\"$set\":{\"role\":\"admin\"}}",
                           &provider_only, &errs), -1);
    assert_true(has_error(&errs, "$set", "operators"));

    assert_int_equal(patch("{\"name.first\":\"x\"}", &provider_only, &errs),
                     -1);
    assert_true(has_error(&errs, "name.first", "dotted"));

    assert_int_equal(patch("{}", &provider_only, &errs), -1);
    assert_true(has_error(&errs, "", "no field"));

    assert_int_equal(patch("[1]", &provider_only, &errs), -1);
}


static void
test_patch_types_and_bounds(void **state)
{
    int                 provider_only;
    char                text[700];
    ngx_feira_errors_t  errs;

    assert_int_equal(patch("{\"name\":{\"$ne\":null}}", &provider_only,
                           &errs), -1);
    assert_true(has_error(&errs, "name", "must be a string"));

    assert_int_equal(patch("{\"name\":null}", &provider_only, &errs), -1);
    assert_true(has_error(&errs, "name", "may not be null"));

    assert_int_equal(patch("{\"name\":\"\"}", &provider_only, &errs), -1);
    assert_int_equal(patch("{\"name\":42}", &provider_only, &errs), -1);

    memset(text, 0, sizeof(text));
    strcpy(text, "{\"bio\":\"");
    memset(text + 8, 'x', 501);
    strcat(text, "\"}");
    assert_int_equal(patch(text, &provider_only, &errs), -1);
    assert_true(has_error(&errs, "bio", "too long"));

    assert_int_equal(patch("{\"phone\":\"call me maybe\"}", &provider_only,
                           &errs), -1);
    assert_true(has_error(&errs, "phone", "phone number"));

    assert_int_equal(patch("{\"avatar_url\":\"javascript:alert(1)\"}",
                           &provider_only, &errs), -1);
    assert_true(has_error(&errs, "avatar_url", "https://"));
    assert_int_equal(patch("{\"avatar_url\":\"http://x.y/a.png\"}",
                           &provider_only, &errs), -1);
    assert_int_equal(patch("{\"avatar_url\":\"https://x.y/a b.png\"}",
                           &provider_only, &errs), -1);

    assert_int_equal(patch("{\"skills\":\"plumbing\"}", &provider_only,
                           &errs), -1);
    assert_int_equal(patch("{\"skills\":[1]}", &provider_only, &errs), -1);
    assert_true(has_error(&errs, "skills", "strings"));
    assert_int_equal(patch("{\"skills\":[\"\"]}", &provider_only, &errs),
                     -1);
    assert_int_equal(patch("{\"skills\":[{\"$gt\":\"\"}]}", &provider_only,
                           &errs), -1);
    assert_int_equal(patch("{\"skills\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\","
                           "\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\","
                           "\"o\",\"p\",\"q\",\"r\",\"s\",\"t\",\"u\"]}",
                           &provider_only, &errs), -1);

    assert_int_equal(patch("{\"service_area\":{\"lat\":91,\"lng\":0,"
                           "\"radius_km\":1}}", &provider_only, &errs), -1);
    assert_true(has_error(&errs, "service_area.lat", "out of range"));
    assert_int_equal(patch("{\"service_area\":{\"lat\":0,\"lng\":0}}",
                           &provider_only, &errs), -1);
    assert_true(has_error(&errs, "service_area.radius_km", "required"));
    assert_int_equal(patch("{\"service_area\":{\"lat\":0,\"lng\":0,"
                           "\"radius_km\":1,\"$where\":\"1\"}}",
                           &provider_only, &errs), -1);
    assert_int_equal(patch("{\"service_area\":[0,0]}", &provider_only,
                           &errs), -1);
}


static void
test_preferences(void **state)
{
    ngx_feira_errors_t  errs;

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"pt-BR\"}", &errs),
                     0);
    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"en\","
                           "\"quiet_hours\":{\"start\":\"22:00\","
                           "\"end\":\"07:30\",\"tz\":\"America/Sao_Paulo\"}}",
                           &errs), 0);
    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"en\","
                           "\"quiet_hours\":null}", &errs), 0);

    assert_int_equal(prefs("{\"language\":\"en\"}", &errs), -1);
    assert_true(has_error(&errs, "notifications", "required"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":\"yes\","
                           "\"sms\":false,\"push\":true},\"language\":\"en\"}",
                           &errs), -1);
    assert_true(has_error(&errs, "notifications.email", "true or false"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,"
                           "\"push\":true},\"language\":\"en\"}", &errs), -1);
    assert_true(has_error(&errs, "notifications.sms", "required"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true,\"fax\":true},\"language\":\"en\"}",
                           &errs), -1);
    assert_true(has_error(&errs, "notifications.fax", "unknown"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"fr\"}", &errs), -1);
    assert_true(has_error(&errs, "language", "allowed"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"en\","
                           "\"quiet_hours\":{\"start\":\"24:00\","
                           "\"end\":\"07:60\",\"tz\":\"../../etc/passwd\"}}",
                           &errs), -1);
    assert_true(has_error(&errs, "quiet_hours.start", "HH:MM"));
    assert_true(has_error(&errs, "quiet_hours.end", "HH:MM"));
    assert_true(has_error(&errs, "quiet_hours.tz", "IANA"));

    assert_int_equal(prefs("{\"notifications\":{\"email\":true,\"sms\":false,"
                           "\"push\":true},\"language\":\"en\","
                           "\"quiet_hours\":{\"start\":\"22:00\","
                           "\"end\":\"22:00\",\"tz\":\"UTC\"}}", &errs), -1);
    assert_true(has_error(&errs, "quiet_hours", "differ"));

    assert_int_equal(prefs("{\"notifications\":{\"$ne\":1},"
                           "\"language\":\"en\"}", &errs), -1);
    assert_int_equal(prefs("[\"en\"]", &errs), -1);
}


static void
test_device_and_review(void **state)
{
    json_t              *json;
    ngx_feira_errors_t   errs;

    memset(&errs, 0, sizeof(errs));
    json = load("{\"platform\":\"android\",\"token\":\"fcm:APA91b-x_y\"}");
    assert_int_equal(ngx_feira_users_device_check(json, &errs), 0);
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"platform\":\"symbian\",\"token\":\"t\"}");
    assert_int_equal(ngx_feira_users_device_check(json, &errs), -1);
    assert_true(has_error(&errs, "platform", "allowed"));
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"platform\":\"web\",\"token\":\"a b\"}");
    assert_int_equal(ngx_feira_users_device_check(json, &errs), -1);
    assert_true(has_error(&errs, "token", "printable"));
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"platform\":\"web\",\"token\":{\"$ne\":\"\"}}");
    assert_int_equal(ngx_feira_users_device_check(json, &errs), -1);
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"rating\":5,\"comment\":\"great\"}");
    assert_int_equal(ngx_feira_users_review_check(json, 10, &errs), 0);
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"rating\":1}");
    assert_int_equal(ngx_feira_users_review_check(json, 10, &errs), 0);
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"rating\":6,\"comment\":\"01234567890\"}");
    assert_int_equal(ngx_feira_users_review_check(json, 10, &errs), -1);
    assert_true(has_error(&errs, "rating", "out of range"));
    assert_true(has_error(&errs, "comment", "too long"));
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"rating\":4.5}");
    assert_int_equal(ngx_feira_users_review_check(json, 10, &errs), -1);
    assert_true(has_error(&errs, "rating", "integer"));
    json_decref(json);

    memset(&errs, 0, sizeof(errs));
    json = load("{\"rating\":0,\"reviewee_id\":\"" ID "\"}");
    assert_int_equal(ngx_feira_users_review_check(json, 10, &errs), -1);
    assert_true(has_error(&errs, "reviewee_id", "unknown"));
    json_decref(json);
}


static void
test_shapes(void **state)
{
    assert_true(ngx_feira_users_is_hhmm("00:00", 5));
    assert_true(ngx_feira_users_is_hhmm("23:59", 5));
    assert_false(ngx_feira_users_is_hhmm("24:00", 5));
    assert_false(ngx_feira_users_is_hhmm("7:00", 4));
    assert_false(ngx_feira_users_is_hhmm("07-00", 5));

    assert_true(ngx_feira_users_is_tz("UTC", 3));
    assert_true(ngx_feira_users_is_tz("America/Sao_Paulo", 17));
    assert_true(ngx_feira_users_is_tz("America/Argentina/Buenos_Aires", 30));
    assert_true(ngx_feira_users_is_tz("Etc/GMT+3", 9));
    assert_false(ngx_feira_users_is_tz("America//Sao_Paulo", 18));
    assert_false(ngx_feira_users_is_tz("America/", 8));
    assert_false(ngx_feira_users_is_tz("/etc/passwd", 11));
    assert_false(ngx_feira_users_is_tz("Europe/../x", 11));
    assert_false(ngx_feira_users_is_tz("", 0));

    assert_true(ngx_feira_users_is_url("https://a.example/x.png?v=1", 27));
    assert_false(ngx_feira_users_is_url("https://", 8));
    assert_false(ngx_feira_users_is_url("https:///x", 10));
    assert_false(ngx_feira_users_is_url("https://a\"onerror=\"x", 20));
    assert_false(ngx_feira_users_is_url("ftp://a.example/x", 17));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_parent_segment),
        cmocka_unit_test(test_patch_allow_list),
        cmocka_unit_test(test_patch_mass_assignment),
        cmocka_unit_test(test_patch_types_and_bounds),
        cmocka_unit_test(test_preferences),
        cmocka_unit_test(test_device_and_review),
        cmocka_unit_test(test_shapes),
    };

    return cmocka_run_group_tests_name("users input", tests, NULL, NULL);
}
