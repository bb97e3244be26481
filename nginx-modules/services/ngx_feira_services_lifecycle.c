/*
 * The request lifecycle table: a new transition is one line here.
 */

#include <stdio.h>
#include <string.h>

#include "ngx_feira_lifecycle.h"


#define CLIENT    NGX_FEIRA_ACTOR_CLIENT
#define PROVIDER  NGX_FEIRA_ACTOR_PROVIDER
#define ASSIGNED  NGX_FEIRA_ACTOR_ASSIGNED
#define SYSTEM    NGX_FEIRA_ACTOR_SYSTEM


/*
 * Every state is left at most once (the graph has no cycle): the store
 * relies on it to make each transition a unique claim "<id>:<from>".
 */

const ngx_feira_transition_t  ngx_feira_lifecycle[] = {

    /* from           action      to             actors
     *                                             event */

    { "open",        "accept",   "accepted",    PROVIDER,
                                               "request.accepted" },
    { "accepted",    "start",    "in_progress", ASSIGNED,
                                               "request.started" },
    { "in_progress", "complete", "completed",   ASSIGNED,
                                               "request.completed" },
    { "open",        "cancel",   "cancelled",   CLIENT,
                                               "request.cancelled" },
    { "accepted",    "cancel",   "cancelled",   CLIENT|ASSIGNED,
                                               "request.cancelled" },
    { "in_progress", "cancel",   "cancelled",   CLIENT|ASSIGNED,
                                               "request.cancelled" },
    { "open",        "expire",   "expired",     SYSTEM,
                                               "request.expired" },

    { NULL, NULL, NULL, 0, NULL }
};


/*
 * Listed so that every transition moves forward in this list: the rank of
 * a request's status only grows, and the cache of request documents
 * (ngx_feira_services_cache.c) uses it as their version.
 */

const char *const  ngx_feira_lifecycle_states[] = {
    "open", "accepted", "in_progress", "completed", "cancelled", "expired",
    NULL
};


static const char *ngx_feira_lifecycle_actor_names(unsigned actors,
    char *buf, size_t len);


const ngx_feira_transition_t *
ngx_feira_lifecycle_find(const char *from, const char *action)
{
    const ngx_feira_transition_t  *t;

    for (t = ngx_feira_lifecycle; t->from != NULL; t++) {
        if (strcmp(t->from, from) == 0 && strcmp(t->action, action) == 0) {
            return t;
        }
    }

    return NULL;
}


/* everyone who may take this action from some state */

unsigned
ngx_feira_lifecycle_actors(const char *action)
{
    unsigned                       actors;
    const ngx_feira_transition_t  *t;

    actors = 0;

    for (t = ngx_feira_lifecycle; t->from != NULL; t++) {
        if (strcmp(t->action, action) == 0) {
            actors |= t->actors;
        }
    }

    return actors;
}


int
ngx_feira_lifecycle_is_state(const char *state)
{
    const char *const  *s;

    for (s = ngx_feira_lifecycle_states; *s != NULL; s++) {
        if (strcmp(*s, state) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the position of a state in the list above, -1 if it is none */

int
ngx_feira_lifecycle_rank(const char *state)
{
    int  i;

    for (i = 0; ngx_feira_lifecycle_states[i] != NULL; i++) {
        if (strcmp(ngx_feira_lifecycle_states[i], state) == 0) {
            return i;
        }
    }

    return -1;
}


int
ngx_feira_lifecycle_is_terminal(const char *state)
{
    const ngx_feira_transition_t  *t;

    for (t = ngx_feira_lifecycle; t->from != NULL; t++) {
        if (strcmp(t->from, state) == 0) {
            return 0;
        }
    }

    return ngx_feira_lifecycle_is_state(state);
}


/* the Mermaid state diagram of docs/lifecycle.md, rendered from the table */

size_t
ngx_feira_lifecycle_mermaid(char *buf, size_t len)
{
    int                            n;
    size_t                         used;
    const char *const             *s;
    const ngx_feira_transition_t  *t;
    char                           names[64];

    used = 0;

#define ngx_feira_lifecycle_out(...)                                         \
    n = snprintf(used < len ? buf + used : NULL,                             \
                 used < len ? len - used : 0, __VA_ARGS__);                  \
    if (n < 0) {                                                             \
        return 0;                                                            \
    }                                                                        \
    used += (size_t) n

    ngx_feira_lifecycle_out("stateDiagram-v2\n");
    ngx_feira_lifecycle_out("    [*] --> %s : create (client)\n",
                            NGX_FEIRA_STATE_INITIAL);

    for (t = ngx_feira_lifecycle; t->from != NULL; t++) {
        ngx_feira_lifecycle_out("    %s --> %s : %s (%s)\n",
                                t->from, t->to, t->action,
                                ngx_feira_lifecycle_actor_names(t->actors,
                                    names, sizeof(names)));
    }

    for (s = ngx_feira_lifecycle_states; *s != NULL; s++) {
        if (ngx_feira_lifecycle_is_terminal(*s)) {
            ngx_feira_lifecycle_out("    %s --> [*]\n", *s);
        }
    }

#undef ngx_feira_lifecycle_out

    return used < len ? used : 0;
}


static const char *
ngx_feira_lifecycle_actor_names(unsigned actors, char *buf, size_t len)
{
    size_t  i, used;

    static const struct {
        unsigned     bit;
        const char  *name;
    } names[] = {
        { NGX_FEIRA_ACTOR_CLIENT, "client" },
        { NGX_FEIRA_ACTOR_PROVIDER, "provider" },
        { NGX_FEIRA_ACTOR_ASSIGNED, "assigned provider" },
        { NGX_FEIRA_ACTOR_SYSTEM, "system" },
    };

    used = 0;
    buf[0] = '\0';

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((actors & names[i].bit) && used < len) {
            used += snprintf(buf + used, len - used, "%s%s",
                             used ? " or " : "", names[i].name);
        }
    }

    return buf;
}
