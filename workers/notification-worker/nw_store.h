/*
 * What the notification worker reads and writes in MongoDB: users and
 * their devices, the delivery records (idempotency), the in-app inbox and
 * the notifications deferred by quiet hours.
 */

#ifndef NW_STORE_H
#define NW_STORE_H

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stddef.h>

typedef struct {
    char         id[32];
    char        *token;
} nw_device_t;

typedef struct {
    char         id[32];
    char        *email;
    char        *phone;
    char        *name;
    char         lang[16];
    int          email_on;
    int          push_on;
    int          sms_on;
    char         quiet_start[16];
    char         quiet_end[16];
    char         quiet_tz[72];
    nw_device_t *devices;
    size_t       ndevices;
} nw_user_t;

typedef struct nw_store_s  nw_store_t;

/* a delivery record to insert; existed tells it was there already */
typedef struct {
    const char  *key;
    const char  *event_id;
    const char  *user_id;
    const char  *channel;
    const char  *status;
    int          existed;
} nw_record_t;

nw_store_t *nw_store_new(const char *uri);
void nw_store_free(nw_store_t *s);
int nw_store_indexes(nw_store_t *s);
int nw_users_load(nw_store_t *s, char (*ids)[32], size_t n,
    nw_user_t **users, size_t *nusers);
void nw_users_free(nw_user_t *users, size_t n);
nw_user_t *nw_user_find(nw_user_t *users, size_t n, const char *id);
int nw_deliveries_status(nw_store_t *s, char (*keys)[128], size_t n,
    char (*status)[16]);
int nw_delivery_set(nw_store_t *s, const char *key, const char *event_id,
    const char *user_id, const char *channel, const char *status,
    const char *error);
int nw_records_insert(nw_store_t *s, nw_record_t *r, size_t n, char *err,
    size_t errlen);
int nw_delivery_forget(nw_store_t *s, const char *key);
int nw_inbox_add(nw_store_t *s, const char *event_id, const char *user_id,
    const char *template, const char *title, const char *body,
    int64_t created_ms);
int nw_deferred_add(nw_store_t *s, const char *key, bson_t *doc);
int nw_store_flush(nw_store_t *s, char *err, size_t errlen);
int nw_device_delete(nw_store_t *s, const char *device_id);
mongoc_collection_t *nw_store_deferred(nw_store_t *s);

#endif /* NW_STORE_H */
