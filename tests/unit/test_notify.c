/*
 * Unit tests of the notification worker's pure logic: template
 * substitution and escaping, quiet-hours window math, who is told what.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nw_b64.h"
#include "nw_plan.h"
#include "nw_quiet.h"
#include "nw_template.h"


static char *
subst(const char *tpl, const char *vars_json, int escape)
{
    char    *out;
    json_t  *vars;

    vars = json_loads(vars_json, 0, NULL);
    assert_non_null(vars);
    out = nw_subst(tpl, vars, escape);
    json_decref(vars);
    assert_non_null(out);

    return out;
}


static void
test_subst_values_and_unknowns(void **state)
{
    char  *s;

    s = subst("Hello {{name}}, {{ n }} x {{r}}; [{{missing}}] {{obj}}",
              "{\"name\":\"Ana\",\"n\":3,\"r\":1.5,\"obj\":{\"a\":1}}",
              NW_ESCAPE_NONE);
    assert_string_equal(s, "Hello Ana, 3 x 1.5; [] ");
    free(s);

    /* unclosed braces and empty names stay as they are / empty */
    s = subst("a {{}} b {{name", "{\"name\":\"x\"}", NW_ESCAPE_NONE);
    assert_string_equal(s, "a  b {{name");
    free(s);

    /* a value is not expanded again */
    s = subst("{{a}}", "{\"a\":\"{{b}}\",\"b\":\"no\"}", NW_ESCAPE_NONE);
    assert_string_equal(s, "{{b}}");
    free(s);
}


static void
test_subst_escapes_html_and_lines(void **state)
{
    char  *s;

    s = subst("<p>{{v}}</p>", "{\"v\":\"<script>&\\\"'\"}", NW_ESCAPE_HTML);
    assert_string_equal(s, "<p>&lt;script&gt;&amp;&quot;&#39;</p>");
    free(s);

    /* the template's own markup is not escaped, only values */
    s = subst("<b>{{v}}</b>", "{\"v\":\"a&amp;b\"}", NW_ESCAPE_HTML);
    assert_string_equal(s, "<b>a&amp;amp;b</b>");
    free(s);

    /* a subject cannot gain a header line */
    s = subst("Hi {{v}}", "{\"v\":\"x\\r\\nBcc: evil@example\"}",
              NW_ESCAPE_LINE);
    assert_string_equal(s, "Hi x  Bcc: evil@example");
    free(s);

    /* the text part keeps values as they are */
    s = subst("{{v}}", "{\"v\":\"<a>\\n\"}", NW_ESCAPE_NONE);
    assert_string_equal(s, "<a>\n");
    free(s);
}


static void
test_templates_from_files(void **state)
{
    char            *s;
    json_t          *vars;
    nw_templates_t  *t;

    t = nw_templates_load(TEMPLATES_DIR, "pt-BR");
    assert_non_null(t);

    vars = json_pack("{s:s, s:s, s:s}", "name", "Bia", "other_name",
                     "<Caio>", "category", "faxina");

    s = nw_render(t, "en", "request_accepted", NW_PART_SUBJECT, vars);
    assert_string_equal(s, "Your request was accepted");
    free(s);

    s = nw_render(t, "pt-BR", "request_accepted", NW_PART_SUBJECT, vars);
    assert_string_equal(s, "Seu pedido foi aceito");
    free(s);

    /* an unknown language falls back to the default */
    s = nw_render(t, "fr", "request_accepted", NW_PART_SHORT, vars);
    assert_string_equal(s, "<Caio> aceitou seu pedido de faxina.");
    free(s);
    assert_string_equal(nw_templates_lang(t, "fr"), "pt-BR");
    assert_string_equal(nw_templates_lang(t, NULL), "pt-BR");

    s = nw_render(t, "en", "request_accepted", NW_PART_HTML, vars);
    assert_non_null(strstr(s, "&lt;Caio&gt; accepted your faxina request."));
    assert_null(strstr(s, "<Caio>"));
    free(s);

    assert_null(nw_render(t, "en", "no_such_template", NW_PART_TEXT, vars));
    assert_false(nw_templates_has(t, "en", "no_such_template"));
    assert_true(nw_templates_has(t, "en", "review_created"));

    json_decref(vars);
    nw_templates_free(t);

    assert_true(nw_template_name_ok("payment_failed_payer"));
    assert_false(nw_template_name_ok("../etc/passwd"));
    assert_false(nw_template_name_ok(""));
    assert_false(nw_template_name_ok("Upper"));
}


static void
test_quiet_window_math(void **state)
{
    int  s;

    assert_int_equal(nw_parse_clock("22:00", &s), 0);
    assert_int_equal(s, 22 * 3600);
    assert_int_equal(nw_parse_clock("07:30:15", &s), 0);
    assert_int_equal(s, 7 * 3600 + 30 * 60 + 15);
    assert_int_equal(nw_parse_clock("24:00", &s), -1);
    assert_int_equal(nw_parse_clock("7:30", &s), -1);
    assert_int_equal(nw_parse_clock("07:60", &s), -1);
    assert_int_equal(nw_parse_clock("07:30:", &s), -1);
    assert_int_equal(nw_parse_clock(NULL, &s), -1);

    /* a window within a day: [09:00, 17:00) */
    assert_int_equal(nw_quiet_wait(8 * 3600, 9 * 3600, 17 * 3600), 0);
    assert_int_equal(nw_quiet_wait(9 * 3600, 9 * 3600, 17 * 3600), 8 * 3600);
    assert_int_equal(nw_quiet_wait(16 * 3600 + 3599, 9 * 3600, 17 * 3600), 1);
    assert_int_equal(nw_quiet_wait(17 * 3600, 9 * 3600, 17 * 3600), 0);

    /* across midnight: [22:00, 07:00) */
    assert_int_equal(nw_quiet_wait(23 * 3600, 22 * 3600, 7 * 3600),
                     8 * 3600);
    assert_int_equal(nw_quiet_wait(1 * 3600, 22 * 3600, 7 * 3600), 6 * 3600);
    assert_int_equal(nw_quiet_wait(7 * 3600, 22 * 3600, 7 * 3600), 0);
    assert_int_equal(nw_quiet_wait(12 * 3600, 22 * 3600, 7 * 3600), 0);

    /* start == end is no window */
    assert_int_equal(nw_quiet_wait(5, 100, 100), 0);
}


static void
test_quiet_until_in_a_zone(void **state)
{
    time_t  t;

    /* 2026-07-01T01:30:00Z is 22:30 the day before in Sao Paulo (UTC-3) */
    t = 1782869400;

    assert_int_equal(nw_quiet_until(t, "22:00", "07:00", "America/Sao_Paulo"),
                     t + 8 * 3600 + 30 * 60);
    /* the same instant in UTC is 01:30, inside too, until 07:00 UTC */
    assert_int_equal(nw_quiet_until(t, "22:00", "07:00", "UTC"),
                     t + 5 * 3600 + 30 * 60);
    /* outside the window */
    assert_int_equal(nw_quiet_until(t, "09:00", "17:00", "America/Sao_Paulo"),
                     0);
    /* a zone that is a path or malformed counts as UTC */
    assert_int_equal(nw_quiet_until(t, "22:00", "07:00", "/etc/passwd"),
                     t + 5 * 3600 + 30 * 60);
    assert_false(nw_tz_ok("../../x"));
    assert_false(nw_tz_ok(":UTC"));
    assert_true(nw_tz_ok("America/Sao_Paulo"));
    /* malformed times: no window */
    assert_int_equal(nw_quiet_until(t, "late", "07:00", "UTC"), 0);
    /* TZ is left as it was */
    assert_null(getenv("TZ"));
}


static int
plan(const char *json, nw_plan_t *p)
{
    char  err[256];

    return nw_plan(json, strlen(json), p, err, sizeof(err));
}


#define ID1  "65a1b2c3d4e5f60718293a4b"
#define ID2  "65a1b2c3d4e5f60718293a4c"
#define ID3  "65a1b2c3d4e5f60718293a4d"
#define EV   "6f1c2a9e0b7d4c3a8e5f1a2b"


static void
test_plan_who_is_told_what(void **state)
{
    nw_plan_t  p;

    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"request.accepted\","
                          "\"data\":{\"client_id\":\"" ID1 "\",\"provider_id\":"
                          "\"" ID2 "\",\"category\":\"x\",\"price\":{\"amount\":"
                          "12050,\"currency\":\"BRL\"}}}", &p), 0);
    assert_int_equal(p.nrcpt, 1);
    assert_string_equal(p.rcpt[0].user_id, ID1);
    assert_string_equal(p.rcpt[0].other_id, ID2);
    assert_string_equal(p.rcpt[0].template, "request_accepted");
    assert_string_equal(json_string_value(json_object_get(p.vars, "amount")),
                        "BRL 120.50");
    nw_plan_free(&p);

    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"request.offered\","
                          "\"data\":{\"client_id\":\"" ID1 "\",\"provider_ids\":"
                          "[\"" ID2 "\",\"" ID3 "\"]}}", &p), 0);
    assert_int_equal(p.nrcpt, 2);
    assert_string_equal(p.rcpt[1].user_id, ID3);
    assert_string_equal(p.rcpt[1].template, "request_offered");
    nw_plan_free(&p);

    /* chat: only an offline recipient */
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"chat.message\","
                          "\"data\":{\"from\":\"" ID1 "\",\"to\":\"" ID2 "\","
                          "\"text\":\"hi\",\"recipient_online\":true}}", &p), 0);
    assert_int_equal(p.nrcpt, 0);
    nw_plan_free(&p);

    /* payments: both sides, each its own template */
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"payment.failed\","
                          "\"data\":{\"payer_id\":\"" ID1 "\",\"payee_id\":\""
                          ID2 "\",\"amount\":5,\"currency\":\"USD\"}}", &p), 0);
    assert_int_equal(p.nrcpt, 2);
    assert_string_equal(p.rcpt[0].template, "payment_failed_payer");
    assert_string_equal(p.rcpt[1].template, "payment_failed_payee");
    assert_string_equal(json_string_value(json_object_get(p.vars, "amount")),
                        "USD 0.05");
    nw_plan_free(&p);

    /* cancelled by the client: the provider is told */
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"request.cancelled\","
                          "\"actor\":{\"role\":\"client\"},\"data\":{"
                          "\"client_id\":\"" ID1 "\",\"provider_id\":\"" ID2
                          "\"}}", &p), 0);
    assert_int_equal(p.nrcpt, 1);
    assert_string_equal(p.rcpt[0].user_id, ID2);
    nw_plan_free(&p);

    /* commands name template and channels */
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"notification.send\","
                          "\"data\":{\"user_id\":\"" ID1 "\",\"template\":"
                          "\"welcome\",\"params\":{\"message\":\"m\",\"bad-key\""
                          ":\"x\"},\"channels\":[\"sms\",\"push\"]}}", &p), 0);
    assert_int_equal(p.nrcpt, 1);
    assert_int_equal(p.rcpt[0].channels, NW_CH_SMS | NW_CH_PUSH);
    assert_string_equal(json_string_value(json_object_get(p.vars, "message")),
                        "m");
    assert_null(json_object_get(p.vars, "bad-key"));
    nw_plan_free(&p);

    /* types that concern nobody */
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"request.created\","
                          "\"data\":{}}", &p), 0);
    assert_int_equal(p.nrcpt, 0);
    nw_plan_free(&p);
}


static void
test_plan_rejects_malformed_events(void **state)
{
    nw_plan_t  p;

    assert_int_equal(plan("{not json", &p), -1);
    assert_int_equal(plan("[]", &p), -1);
    assert_int_equal(plan("{\"id\":\"short\",\"type\":\"x\",\"data\":{}}", &p),
                     -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"x\"}", &p), -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"id\":\"" EV "\",\"type\":\"x\","
                          "\"data\":{}}", &p), -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"request.accepted\","
                          "\"data\":{\"client_id\":{\"$ne\":null}}}", &p), -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"notification.send\","
                          "\"data\":{\"user_id\":\"" ID1 "\",\"template\":"
                          "\"../x\"}}", &p), -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"notification.send\","
                          "\"data\":{\"user_id\":\"" ID1 "\",\"template\":"
                          "\"welcome\",\"channels\":[\"fax\"]}}", &p), -1);
    assert_int_equal(plan("{\"id\":\"" EV "\",\"type\":\"chat.message\","
                          "\"data\":{\"from\":\"" ID1 "\",\"to\":\"" ID2 "\","
                          "\"recipient_online\":\"no\"}}", &p), -1);
}


static void
test_b64(void **state)
{
    char  *s;

    s = nw_b64((const unsigned char *) "ab?", 3, 0, NULL);
    assert_string_equal(s, "YWI/");
    free(s);
    s = nw_b64((const unsigned char *) "ab?", 3, 1, NULL);
    assert_string_equal(s, "YWI_");
    free(s);
    s = nw_b64((const unsigned char *) "a", 1, 0, NULL);
    assert_string_equal(s, "YQ==");
    free(s);
    s = nw_b64((const unsigned char *) "ab", 2, 1, NULL);
    assert_string_equal(s, "YWI");
    free(s);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_subst_values_and_unknowns),
        cmocka_unit_test(test_subst_escapes_html_and_lines),
        cmocka_unit_test(test_templates_from_files),
        cmocka_unit_test(test_quiet_window_math),
        cmocka_unit_test(test_quiet_until_in_a_zone),
        cmocka_unit_test(test_plan_who_is_told_what),
        cmocka_unit_test(test_plan_rejects_malformed_events),
        cmocka_unit_test(test_b64),
    };

    return cmocka_run_group_tests_name("notification worker", tests, NULL,
                                       NULL);
}
