/*
 * Unit tests of the request lifecycle table (ngx_feira_services_lifecycle.c)
 * and of docs/lifecycle.md, whose diagram must be the table's.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_lifecycle.h"


#ifndef FEIRA_LIFECYCLE_DOC
#define FEIRA_LIFECYCLE_DOC  "../../docs/lifecycle.md"
#endif


static void
test_the_issue_transitions(void **state)
{
    const ngx_feira_transition_t  *t;

    t = ngx_feira_lifecycle_find("open", "accept");
    assert_non_null(t);
    assert_string_equal(t->to, "accepted");
    assert_int_equal(t->actors, NGX_FEIRA_ACTOR_PROVIDER);

    t = ngx_feira_lifecycle_find("accepted", "start");
    assert_non_null(t);
    assert_string_equal(t->to, "in_progress");
    assert_int_equal(t->actors, NGX_FEIRA_ACTOR_ASSIGNED);

    t = ngx_feira_lifecycle_find("in_progress", "complete");
    assert_non_null(t);
    assert_string_equal(t->to, "completed");
    assert_string_equal(t->event, "request.completed");

    t = ngx_feira_lifecycle_find("open", "expire");
    assert_non_null(t);
    assert_int_equal(t->actors, NGX_FEIRA_ACTOR_SYSTEM);

    /* illegal ones are simply not in the table */
    assert_null(ngx_feira_lifecycle_find("open", "start"));
    assert_null(ngx_feira_lifecycle_find("open", "complete"));
    assert_null(ngx_feira_lifecycle_find("accepted", "accept"));
    assert_null(ngx_feira_lifecycle_find("completed", "cancel"));
    assert_null(ngx_feira_lifecycle_find("expired", "accept"));
    assert_null(ngx_feira_lifecycle_find("accepted", "expire"));
}


static void
test_cancel_before_completed_only(void **state)
{
    const char *const             *s;
    const ngx_feira_transition_t  *t;

    for (s = ngx_feira_lifecycle_states; *s; s++) {
        t = ngx_feira_lifecycle_find(*s, "cancel");

        if (ngx_feira_lifecycle_is_terminal(*s)) {
            assert_null(t);
            continue;
        }

        assert_non_null(t);
        assert_string_equal(t->to, "cancelled");
        assert_true(t->actors & NGX_FEIRA_ACTOR_CLIENT);
    }

    /* a provider cancels only what it was assigned */
    assert_int_equal(ngx_feira_lifecycle_find("open", "cancel")->actors,
                     NGX_FEIRA_ACTOR_CLIENT);
    assert_int_equal(ngx_feira_lifecycle_actors("cancel"),
                     NGX_FEIRA_ACTOR_CLIENT | NGX_FEIRA_ACTOR_ASSIGNED);
}


/* the store's claims "<id>:<from>" need every state left at most once */

static void
test_no_state_is_entered_twice(void **state)
{
    int                            reach[16];
    size_t                         i, n, changed;
    const ngx_feira_transition_t  *t;

    for (t = ngx_feira_lifecycle; t->from; t++) {
        assert_true(ngx_feira_lifecycle_is_state(t->from));
        assert_true(ngx_feira_lifecycle_is_state(t->to));
        assert_string_not_equal(t->from, t->to);
        assert_non_null(strstr(t->event, "request."));
        assert_true(t->actors != 0);
    }

    /* acyclic: a topological order exists (Kahn, by repeated passes) */
    for (n = 0; ngx_feira_lifecycle_states[n]; n++) {
        reach[n] = 0;
    }

    assert_true(n < 16);

    for (i = 0; i < n; i++) {
        for (t = ngx_feira_lifecycle; t->from; t++) {
            if (strcmp(t->to, ngx_feira_lifecycle_states[i]) == 0) {
                reach[i]++;
            }
        }
    }

    do {
        changed = 0;

        for (i = 0; i < n; i++) {
            if (reach[i] != 0) {
                continue;
            }

            reach[i] = -1;
            changed = 1;

            for (t = ngx_feira_lifecycle; t->from; t++) {
                if (strcmp(t->from, ngx_feira_lifecycle_states[i]) == 0) {
                    size_t  j;

                    for (j = 0; j < n; j++) {
                        if (strcmp(t->to, ngx_feira_lifecycle_states[j]) == 0)
                        {
                            reach[j]--;
                        }
                    }
                }
            }
        }

    } while (changed);

    for (i = 0; i < n; i++) {
        assert_int_equal(reach[i], -1);
    }

    assert_true(ngx_feira_lifecycle_is_terminal("completed"));
    assert_true(ngx_feira_lifecycle_is_terminal("cancelled"));
    assert_true(ngx_feira_lifecycle_is_terminal("expired"));
    assert_false(ngx_feira_lifecycle_is_terminal("open"));
    assert_false(ngx_feira_lifecycle_is_terminal("nonsense"));
}


/* the request cache takes the rank of the status as the version */

static void
test_every_transition_moves_forward(void **state)
{
    const ngx_feira_transition_t  *t;

    for (t = ngx_feira_lifecycle; t->from; t++) {
        assert_true(ngx_feira_lifecycle_rank(t->from) >= 0);
        assert_true(ngx_feira_lifecycle_rank(t->to)
                    > ngx_feira_lifecycle_rank(t->from));
    }

    assert_int_equal(ngx_feira_lifecycle_rank(NGX_FEIRA_STATE_INITIAL), 0);
    assert_int_equal(ngx_feira_lifecycle_rank("nonsense"), -1);
}


static void
test_doc_matches_table(void **state)
{
    FILE    *f;
    char    *doc, *begin, *end, expected[4096];
    long     size;
    size_t   n;

    n = ngx_feira_lifecycle_mermaid(expected, sizeof(expected));
    assert_true(n > 0);

    f = fopen(FEIRA_LIFECYCLE_DOC, "r");
    assert_non_null(f);

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    doc = malloc(size + 1);
    assert_non_null(doc);
    assert_int_equal(fread(doc, 1, size, f), (size_t) size);
    doc[size] = '\0';
    fclose(f);

    begin = strstr(doc, "```mermaid\n");
    assert_non_null(begin);
    begin += sizeof("```mermaid\n") - 1;

    end = strstr(begin, "```");
    assert_non_null(end);
    *end = '\0';

    if (strcmp(begin, expected) != 0) {
        fprintf(stderr, "docs/lifecycle.md differs from the table; its "
                "diagram must be:\n```mermaid\n%s```\n", expected);
    }

    assert_string_equal(begin, expected);

    free(doc);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_issue_transitions),
        cmocka_unit_test(test_cancel_before_completed_only),
        cmocka_unit_test(test_no_state_is_entered_twice),
        cmocka_unit_test(test_every_transition_moves_forward),
        cmocka_unit_test(test_doc_matches_table),
    };

    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
