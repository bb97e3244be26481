/*
 * From an event to its recipients.  Every field is type-checked: an event
 * that is not what docs/events.md says is a permanent failure (dead
 * letter), an event of a type that concerns nobody is done at once.
 */

#include <stdio.h>
#include <string.h>

#include "nw_plan.h"
#include "nw_template.h"


static int nw_add(nw_plan_t *p, json_t *data, const char *field,
    const char *other_field, const char *template, unsigned channels,
    char *err, size_t errlen);
static int nw_copy_vars(nw_plan_t *p, json_t *data);


int
nw_hex_id(const char *s)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }

    for (i = 0; i < 24; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
              || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return s[24] == '\0';
}


void
nw_plan_free(nw_plan_t *plan)
{
    json_decref(plan->vars);
    plan->vars = NULL;
}


/* one recipient from data[field], the counterpart from data[other] */

static int
nw_add(nw_plan_t *p, json_t *data, const char *field, const char *other,
    const char *template, unsigned channels, char *err, size_t errlen)
{
    const char      *id, *oid;
    nw_recipient_t  *r;

    id = json_string_value(json_object_get(data, field));

    if (!nw_hex_id(id)) {
        snprintf(err, errlen, "data.%s: expected a 24-hex id", field);
        return -1;
    }

    oid = other ? json_string_value(json_object_get(data, other)) : NULL;

    if (p->nrcpt == NW_MAX_RECIPIENTS) {
        snprintf(err, errlen, "more than %d recipients", NW_MAX_RECIPIENTS);
        return -1;
    }

    r = &p->rcpt[p->nrcpt++];
    snprintf(r->user_id, sizeof(r->user_id), "%s", id);
    snprintf(r->other_id, sizeof(r->other_id), "%s",
             nw_hex_id(oid) ? oid : "");
    snprintf(r->template, sizeof(r->template), "%s", template);
    r->channels = channels;

    return 0;
}


/* the scalar fields of data become template variables */

static int
nw_copy_vars(nw_plan_t *p, json_t *data)
{
    char         amount[64];
    json_t      *v, *a, *c;
    const char  *k;

    json_object_foreach(data, k, v) {
        if (!nw_template_name_ok(k)) {
            continue;
        }

        if (json_is_string(v) && json_string_length(v) <= 4096) {
            json_object_set(p->vars, k, v);

        } else if (json_is_integer(v) || json_is_real(v)) {
            json_object_set(p->vars, k, v);
        }
    }

    /* money: {amount: minor units, currency} or amount + currency */
    a = json_object_get(data, "amount");
    c = json_object_get(data, "currency");

    if (json_is_object(json_object_get(data, "price"))) {
        a = json_object_get(json_object_get(data, "price"), "amount");
        c = json_object_get(json_object_get(data, "price"), "currency");
    }

    if (json_is_integer(a) && json_is_string(c)
        && json_string_length(c) <= 8)
    {
        snprintf(amount, sizeof(amount), "%s %lld.%02lld",
                 json_string_value(c),
                 (long long) json_integer_value(a) / 100,
                 (long long) (json_integer_value(a) % 100 < 0
                              ? -(json_integer_value(a) % 100)
                              : json_integer_value(a) % 100));
        json_object_set_new(p->vars, "amount", json_string(amount));
    }

    return 0;
}


int
nw_plan(const char *text, size_t len, nw_plan_t *p, char *err, size_t errlen)
{
    size_t       i;
    json_t      *env, *data, *v, *params, *chans;
    unsigned     mask;
    const char  *id, *type, *s, *what, *role;
    char         tpl[64];

    memset(p, 0, sizeof(*p));

    env = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(env)) {
        snprintf(err, errlen, "not a JSON object");
        json_decref(env);
        return -1;
    }

    id = json_string_value(json_object_get(env, "id"));
    type = json_string_value(json_object_get(env, "type"));
    data = json_object_get(env, "data");

    if (!nw_hex_id(id) || type == NULL || strlen(type) >= sizeof(p->type)
        || !json_is_object(data))
    {
        snprintf(err, errlen, "envelope: expected id (24 hex), type, data");
        json_decref(env);
        return -1;
    }

    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->type, sizeof(p->type), "%s", type);

    p->vars = json_object();
    if (p->vars == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(env);
        return -1;
    }

    nw_copy_vars(p, data);

    if (strcmp(type, "request.offered") == 0) {
        v = json_object_get(data, "provider_ids");
        if (!json_is_array(v)) {
            snprintf(err, errlen, "data.provider_ids: expected an array");
            goto invalid;
        }

        for (i = 0; i < json_array_size(v); i++) {
            s = json_string_value(json_array_get(v, i));
            if (!nw_hex_id(s) || p->nrcpt == NW_MAX_RECIPIENTS) {
                snprintf(err, errlen, "data.provider_ids: bad id or too many");
                goto invalid;
            }

            snprintf(p->rcpt[p->nrcpt].user_id, 32, "%s", s);
            s = json_string_value(json_object_get(data, "client_id"));
            snprintf(p->rcpt[p->nrcpt].other_id, 32, "%s",
                     nw_hex_id(s) ? s : "");
            snprintf(p->rcpt[p->nrcpt].template, 64, "request_offered");
            p->rcpt[p->nrcpt].channels = NW_CH_ALL;
            p->nrcpt++;
        }

    } else if (strcmp(type, "request.accepted") == 0
               || strcmp(type, "request.started") == 0
               || strcmp(type, "request.completed") == 0)
    {
        snprintf(tpl, sizeof(tpl), "request_%s", type + 8);
        if (nw_add(p, data, "client_id", "provider_id", tpl, NW_CH_ALL, err,
                   errlen) != 0)
        {
            goto invalid;
        }

    } else if (strcmp(type, "request.cancelled") == 0) {
        role = json_string_value(json_object_get(json_object_get(env, "actor"),
                                                 "role"));

        if (role != NULL && strcmp(role, "client") == 0) {
            if (json_object_get(data, "provider_id") != NULL
                && nw_add(p, data, "provider_id", "client_id",
                          "request_cancelled", NW_CH_ALL, err, errlen) != 0)
            {
                goto invalid;
            }

        } else if (nw_add(p, data, "client_id", "provider_id",
                          "request_cancelled", NW_CH_ALL, err, errlen) != 0)
        {
            goto invalid;
        }

    } else if (strcmp(type, "chat.message") == 0) {
        v = json_object_get(data, "recipient_online");
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "data.recipient_online: expected a boolean");
            goto invalid;
        }

        /* an online participant sees it live */
        if (!json_is_true(v)
            && nw_add(p, data, "to", "from", "chat_message", NW_CH_ALL, err,
                      errlen) != 0)
        {
            goto invalid;
        }

    } else if (strcmp(type, "payment.succeeded") == 0
               || strcmp(type, "payment.failed") == 0)
    {
        what = type + 8;

        snprintf(tpl, sizeof(tpl), "payment_%s_payer", what);
        if (nw_add(p, data, "payer_id", "payee_id", tpl, NW_CH_ALL, err,
                   errlen) != 0)
        {
            goto invalid;
        }

        snprintf(tpl, sizeof(tpl), "payment_%s_payee", what);
        if (nw_add(p, data, "payee_id", "payer_id", tpl, NW_CH_ALL, err,
                   errlen) != 0)
        {
            goto invalid;
        }

    } else if (strcmp(type, "review.created") == 0) {
        if (nw_add(p, data, "reviewee_id", "reviewer_id", "review_created",
                   NW_CH_ALL, err, errlen) != 0)
        {
            goto invalid;
        }

    } else if (strcmp(type, "notification.send") == 0) {
        s = json_string_value(json_object_get(data, "template"));
        if (s == NULL || !nw_template_name_ok(s)) {
            snprintf(err, errlen, "data.template: expected [a-z0-9_]+");
            goto invalid;
        }

        params = json_object_get(data, "params");
        if (params != NULL && !json_is_object(params)) {
            snprintf(err, errlen, "data.params: expected an object");
            goto invalid;
        }

        nw_copy_vars(p, params);

        mask = NW_CH_ALL;
        chans = json_object_get(data, "channels");

        if (chans != NULL) {
            if (!json_is_array(chans)) {
                snprintf(err, errlen, "data.channels: expected an array");
                goto invalid;
            }

            mask = 0;

            for (i = 0; i < json_array_size(chans); i++) {
                s = json_string_value(json_array_get(chans, i));

                if (s != NULL && strcmp(s, "email") == 0) {
                    mask |= NW_CH_EMAIL;

                } else if (s != NULL && strcmp(s, "push") == 0) {
                    mask |= NW_CH_PUSH;

                } else if (s != NULL && strcmp(s, "sms") == 0) {
                    mask |= NW_CH_SMS;

                } else {
                    snprintf(err, errlen, "data.channels: email, push, sms");
                    goto invalid;
                }
            }
        }

        if (nw_add(p, data, "user_id", NULL,
                   json_string_value(json_object_get(data, "template")),
                   mask, err, errlen) != 0)
        {
            goto invalid;
        }
    }

    json_decref(env);

    return 0;

invalid:

    json_decref(env);
    nw_plan_free(p);

    return -1;
}
