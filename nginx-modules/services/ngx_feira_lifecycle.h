/*
 * The lifecycle of a service request, declared once as a table.
 *
 * Pure C with no nginx dependency: the store applies it, the C unit tests
 * check it and render docs/lifecycle.md from it.
 */

#ifndef _NGX_FEIRA_LIFECYCLE_H_INCLUDED_
#define _NGX_FEIRA_LIFECYCLE_H_INCLUDED_


#include <stddef.h>


/* who may take a transition: a bit mask */
#define NGX_FEIRA_ACTOR_CLIENT    0x01    /* the request's client */
#define NGX_FEIRA_ACTOR_PROVIDER  0x02    /* a provider of the category */
#define NGX_FEIRA_ACTOR_ASSIGNED  0x04    /* the request's provider */
#define NGX_FEIRA_ACTOR_SYSTEM    0x08    /* the expiry sweep */

#define NGX_FEIRA_STATE_INITIAL   "open"


typedef struct {
    const char    *from;
    const char    *action;
    const char    *to;
    unsigned       actors;
    const char    *event;       /* the type published on feira.requests */
} ngx_feira_transition_t;


extern const ngx_feira_transition_t  ngx_feira_lifecycle[];
extern const char *const             ngx_feira_lifecycle_states[];


const ngx_feira_transition_t *ngx_feira_lifecycle_find(const char *from,
    const char *action);
unsigned ngx_feira_lifecycle_actors(const char *action);
int ngx_feira_lifecycle_is_state(const char *state);
int ngx_feira_lifecycle_is_terminal(const char *state);
int ngx_feira_lifecycle_rank(const char *state);
size_t ngx_feira_lifecycle_mermaid(char *buf, size_t len);


#endif /* _NGX_FEIRA_LIFECYCLE_H_INCLUDED_ */
