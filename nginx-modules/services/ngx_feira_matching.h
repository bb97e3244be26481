/*
 * Matching: distance, eligibility and the score of a provider for a
 * request, the compact offering profile kept in Redis, and the time
 * helpers they need.
 *
 * Pure C with no nginx dependency, unit tested alone; the formula is
 * documented in docs/matching.md.
 */

#ifndef _NGX_FEIRA_MATCHING_H_INCLUDED_
#define _NGX_FEIRA_MATCHING_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_FEIRA_EARTH_RADIUS_KM    6371.0088
#define NGX_FEIRA_MAX_WINDOWS        28
#define NGX_FEIRA_PROFILE_LEN        512

/* the weights of the score: docs/matching.md */
#define NGX_FEIRA_W_DISTANCE         0.40
#define NGX_FEIRA_W_RATING           0.30
#define NGX_FEIRA_W_PRICE            0.20
#define NGX_FEIRA_W_ACCEPTANCE       0.10

/* the distance at which the distance part is one half */
#define NGX_FEIRA_HALF_DISTANCE_KM   5.0


typedef struct {
    uint8_t        day;         /* 0 Sunday .. 6 Saturday, UTC */
    uint16_t       start;       /* minutes since midnight */
    uint16_t       end;         /* exclusive, up to 1440 */
} ngx_feira_window_t;


/* what matching needs of an offering; kept in Redis as one string */
typedef struct {
    char                offering_id[25];
    int64_t             amount;
    char                currency[4];
    int                 hourly;
    double              radius_km;
    size_t              nwindows;
    ngx_feira_window_t  windows[NGX_FEIRA_MAX_WINDOWS];
} ngx_feira_profile_t;


typedef struct {
    double         lat;
    double         lng;
    int            has_budget;
    int64_t        budget;
    char           currency[4];
    int64_t        scheduled_at;    /* unix seconds; 0: as soon as possible */
} ngx_feira_match_request_t;


typedef struct {
    double         distance;
    double         rating;
    double         price;
    double         acceptance;
    double         score;
} ngx_feira_score_t;


double ngx_feira_haversine_km(double lat1, double lng1, double lat2,
    double lng2);

int ngx_feira_profile_parse(const char *s, size_t len,
    ngx_feira_profile_t *p);
int ngx_feira_offers_parse(const char *s, size_t len, int64_t month,
    int64_t before, int64_t *received, int64_t *accepted);
size_t ngx_feira_profile_format(const ngx_feira_profile_t *p, char *buf,
    size_t len);

int ngx_feira_availability_covers(const ngx_feira_profile_t *p,
    int64_t when);
int ngx_feira_match_eligible(const ngx_feira_match_request_t *rq,
    const ngx_feira_profile_t *p, double distance_km);
void ngx_feira_match_score(const ngx_feira_match_request_t *rq,
    const ngx_feira_profile_t *p, double distance_km, double rating,
    int64_t received, int64_t accepted, ngx_feira_score_t *score);

int ngx_feira_parse_hhmm(const char *s, size_t len, int allow_24);
int ngx_feira_parse_rfc3339(const char *s, size_t len, int64_t *t);
size_t ngx_feira_format_rfc3339(int64_t t, char *buf, size_t len);
int ngx_feira_weekday(int64_t t);


#endif /* _NGX_FEIRA_MATCHING_H_INCLUDED_ */
