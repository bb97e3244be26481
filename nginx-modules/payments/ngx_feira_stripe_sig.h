/*
 * The Stripe-Signature header of Stripe's webhooks: its parser and the
 * check of a delivery (HMAC-SHA256 of "<t>.<raw body>" with the endpoint's
 * secret, any of the v1 values, a tolerance on t).
 *
 * Pure C over OpenSSL, with no nginx dependency, so that the unit tests and
 * the fuzz target link it alone.
 */

#ifndef _NGX_FEIRA_STRIPE_SIG_H_INCLUDED_
#define _NGX_FEIRA_STRIPE_SIG_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <time.h>


#define NGX_FEIRA_STRIPE_SIG_MAX_V1    8
#define NGX_FEIRA_STRIPE_SIG_MAX_LEN   1024

#define NGX_FEIRA_STRIPE_SIG_OK         0
#define NGX_FEIRA_STRIPE_SIG_MALFORMED  1
#define NGX_FEIRA_STRIPE_SIG_EXPIRED    2
#define NGX_FEIRA_STRIPE_SIG_MISMATCH   3


typedef struct {
    int64_t          t;
    /* the digits of t as sent: they are what was signed */
    char             t_text[20];
    size_t           t_len;
    size_t           nv1;
    unsigned char    v1[NGX_FEIRA_STRIPE_SIG_MAX_V1][32];
} ngx_feira_stripe_sig_t;


/*
 * "t=<unix seconds>,v1=<64 hex>[,v1=...][,v0=...]": exactly one t, at least
 * one well-formed v1 (at most NGX_FEIRA_STRIPE_SIG_MAX_V1 are kept), other
 * schemes ignored.  0, or -1 when malformed.
 */
int ngx_feira_stripe_sig_parse(const char *header, size_t len,
    ngx_feira_stripe_sig_t *sig);

/* one of NGX_FEIRA_STRIPE_SIG_*; the comparison is in constant time */
int ngx_feira_stripe_sig_verify(const char *header, size_t header_len,
    const unsigned char *body, size_t body_len, const unsigned char *secret,
    size_t secret_len, int64_t now, int64_t tolerance);

/* the header of a delivery signed at t: for tests and the fuzz target */
int ngx_feira_stripe_sig_sign(const unsigned char *body, size_t body_len,
    const unsigned char *secret, size_t secret_len, int64_t t,
    unsigned char *mac);


#endif /* _NGX_FEIRA_STRIPE_SIG_H_INCLUDED_ */
