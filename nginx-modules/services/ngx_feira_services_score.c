/*
 * The score of a provider for a request: pure, no nginx, unit tested
 * (tests/unit/test_matching.c); the formula and its reasons are in
 * docs/matching.md.  Each part is in 0..1, the weights sum to 1:
 *
 *   distance    1 / (1 + d / 5 km)
 *   rating      (rating_avg - 1) / 4; 0.5 while unrated
 *   price       1 within the budget, falling to 0 at twice the budget;
 *               0.5 without a budget or in another currency
 *   acceptance  (accepted + 1) / (offered + 2), this month and the last
 */

#include <string.h>

#include "ngx_feira_matching.h"


void
ngx_feira_match_score(const ngx_feira_match_request_t *rq,
    const ngx_feira_profile_t *p, double distance_km, double rating,
    int64_t received, int64_t accepted, ngx_feira_score_t *s)
{
    double  over;

    if (distance_km < 0) {
        distance_km = 0;
    }

    s->distance = 1.0 / (1.0 + distance_km / NGX_FEIRA_HALF_DISTANCE_KM);

    /* ratings are 1..5; none yet (0 or missing) is neither good nor bad */
    if (rating >= 1.0 && rating <= 5.0) {
        s->rating = (rating - 1.0) / 4.0;

    } else {
        s->rating = 0.5;
    }

    if (!rq->has_budget || strcmp(rq->currency, p->currency) != 0) {
        s->price = 0.5;

    } else if (p->amount <= rq->budget) {
        s->price = 1.0;

    } else if (rq->budget <= 0) {
        s->price = 0.0;

    } else {
        /* 1 at the budget, 0 at twice the budget and above */
        over = (double) (p->amount - rq->budget) / (double) rq->budget;
        s->price = over >= 1.0 ? 0.0 : 1.0 - over;
    }

    if (received < 0) {
        received = 0;
    }

    if (accepted < 0) {
        accepted = 0;
    }

    if (accepted > received) {
        accepted = received;
    }

    /* Laplace: a provider never offered anything starts at one half */
    s->acceptance = (double) (accepted + 1) / (double) (received + 2);

    s->score = NGX_FEIRA_W_DISTANCE * s->distance
               + NGX_FEIRA_W_RATING * s->rating
               + NGX_FEIRA_W_PRICE * s->price
               + NGX_FEIRA_W_ACCEPTANCE * s->acceptance;
}
