/*
 * The handler of Kafka events.  For a batch of events: plan the
 * recipients, read their users and devices, write the in-app inbox, read
 * the delivery records, hold back what quiet hours forbid, record the rest
 * as "sending" and hand it to the sender; when the last job of an event
 * finished and its record is written, the event is done.
 *
 * Idempotency: a delivery is keyed by event:user:channel[:device]; a key
 * already "sent", "failed" or "deferred" is not sent again.  A key left
 * "sending" by a crash is sent again with the same key (Message-ID, FCM
 * data and X-Feira-Idempotency-Key carry it), so a receiver can drop the
 * copy: at-least-once, see workers/README.md.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nw.h"
#include "nw_quiet.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


typedef struct {
    nw_job_t      *job;
    time_t         until;          /* quiet hours: deferred to this time */
} nw_pending_t;


static int nw_collect_ids(nw_plan_t *plans, size_t n, char (**ids)[32],
    size_t *nids);
static int nw_id_cmp(const void *a, const void *b);
static nw_job_t *nw_job_new(nw_ctx_t *c, nw_channel_t *ch, nw_attempt_t *a,
    nw_plan_t *p, nw_recipient_t *r, const char *suffix, const char *to);
static int nw_render_all(nw_ctx_t *c, nw_job_t *job, const char *lang,
    json_t *vars);
static int nw_copy_texts(nw_job_t *job, nw_job_t *from);
static int nw_defer(nw_ctx_t *c, nw_job_t *job, fw_event_t *ev, time_t until);
static void nw_attempt_job_done(nw_attempt_t *a, nw_job_t *job);


void
nw_count(const char *channel, const char *result)
{
    char  labels[96];

    snprintf(labels, sizeof(labels), "channel=\"%s\",result=\"%s\"", channel,
             result);
    fw_metrics_count("feira_notifications_total",
                     "Notifications by channel and outcome.", labels, 1);
}


static int
nw_collect_ids(nw_plan_t *plans, size_t n, char (**ids)[32], size_t *nids)
{
    size_t       i, j, k, m, cap;
    const char  *id;
    char       (*list)[32];

    cap = 0;
    for (i = 0; i < n; i++) {
        cap += plans[i].nrcpt * 2;
    }

    list = malloc((cap ? cap : 1) * 32);
    if (list == NULL) {
        return -1;
    }

    m = 0;

    for (i = 0; i < n; i++) {
        for (j = 0; j < plans[i].nrcpt; j++) {
            for (k = 0; k < 2; k++) {
                id = k ? plans[i].rcpt[j].other_id : plans[i].rcpt[j].user_id;
                if (id[0] != '\0') {
                    snprintf(list[m++], 32, "%s", id);
                }
            }
        }
    }

    /* each user once: the store matches every document against the list */

    if (m > 1) {
        qsort(list, m, 32, nw_id_cmp);

        for (i = 1, j = 1; i < m; i++) {
            if (strcmp(list[i], list[j - 1]) != 0) {
                memcpy(list[j++], list[i], 32);
            }
        }

        m = j;
    }

    *ids = list;
    *nids = m;

    return 0;
}


static int
nw_id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}


static nw_job_t *
nw_job_new(nw_ctx_t *c, nw_channel_t *ch, nw_attempt_t *a, nw_plan_t *p,
    nw_recipient_t *r, const char *suffix, const char *to)
{
    nw_job_t  *job;

    (void) c;

    job = calloc(1, sizeof(nw_job_t));
    if (job == NULL) {
        return NULL;
    }

    job->channel = ch;
    job->owner = a;
    job->done = nw_job_finished;

    snprintf(job->key, sizeof(job->key), "%s:%s:%s%s%s", p->id, r->user_id,
             ch->name, suffix ? ":" : "", suffix ? suffix : "");
    snprintf(job->event_id, sizeof(job->event_id), "%s", p->id);
    snprintf(job->user_id, sizeof(job->user_id), "%s", r->user_id);
    snprintf(job->device_id, sizeof(job->device_id), "%s",
             suffix ? suffix : "");
    snprintf(job->event_type, sizeof(job->event_type), "%s", p->type);
    snprintf(job->template, sizeof(job->template), "%s", r->template);

    job->to = strdup(to);
    if (job->to == NULL) {
        free(job);
        return NULL;
    }

    return job;
}


static int
nw_render_all(nw_ctx_t *c, nw_job_t *job, const char *lang, json_t *vars)
{
    job->subject = nw_render(c->templates, lang, job->template,
                             NW_PART_SUBJECT, vars);
    job->text = nw_render(c->templates, lang, job->template, NW_PART_TEXT,
                          vars);
    job->html = nw_render(c->templates, lang, job->template, NW_PART_HTML,
                          vars);
    job->short_text = nw_render(c->templates, lang, job->template,
                                NW_PART_SHORT, vars);

    return (job->subject && job->text && job->html && job->short_text)
           ? 0 : -1;
}


/* the texts of a recipient, rendered once, for each of its jobs */

static int
nw_copy_texts(nw_job_t *job, nw_job_t *from)
{
    job->subject = strdup(from->subject);
    job->text = strdup(from->text);
    job->html = strdup(from->html);
    job->short_text = strdup(from->short_text);

    return (job->subject && job->text && job->html && job->short_text)
           ? 0 : -1;
}


/* an address fit for a header and an SMTP command */

static int
nw_email_ok(const char *s)
{
    return s != NULL && strlen(s) < 255 && strchr(s, '@') != NULL
           && strpbrk(s, "\r\n<>,;\" ") == NULL;
}


static int
nw_defer(nw_ctx_t *c, nw_job_t *job, fw_event_t *ev, time_t until)
{
    int      rc;
    bson_t  *doc;

    doc = BCON_NEW("event_id", BCON_UTF8(job->event_id),
                   "user_id", BCON_UTF8(job->user_id),
                   "channel", BCON_UTF8(job->channel->name),
                   "device_id", BCON_UTF8(job->device_id),
                   "to", BCON_UTF8(job->to),
                   "template", BCON_UTF8(job->template),
                   "event_type", BCON_UTF8(job->event_type),
                   "subject", BCON_UTF8(job->subject),
                   "text", BCON_UTF8(job->text),
                   "html", BCON_UTF8(job->html),
                   "short", BCON_UTF8(job->short_text),
                   "due_at", BCON_DATE_TIME((int64_t) until * 1000),
                   "state", BCON_UTF8("waiting"),
                   "attempts", BCON_INT32(0),
                   "topic", BCON_UTF8(ev->topic),
                   "created_at", BCON_DATE_TIME(fw_wall_ms()));

    bson_append_utf8(doc, "msg_key", -1,
                     ev->msg->key ? (const char *) ev->msg->key : "",
                     ev->msg->key ? (int) ev->msg->key_len : 0);
    bson_append_utf8(doc, "event", -1, (const char *) ev->msg->payload,
                     (int) ev->msg->len);

    rc = nw_deferred_add(c->store, job->key, doc);
    bson_destroy(doc);

    return rc;
}


void
nw_handle(void *ctx, fw_event_t **evs, size_t n)
{
    int              bad;
    char             err[256], (*ids)[32], (*keys)[128], (*status)[16];
    size_t           i, j, k, nids, nusers, njobs, cap;
    time_t           now, until;
    json_t          *vars;
    nw_ctx_t        *c;
    nw_job_t        *job, *texts;
    nw_plan_t       *plans;
    nw_user_t       *users, *u, *o;
    const char      *lang;
    nw_record_t     *recs;
    nw_pending_t    *jobs, *grown;
    nw_attempt_t   **att;
    nw_recipient_t  *r;

    c = ctx;
    now = time(NULL);
    ids = NULL;
    keys = NULL;
    status = NULL;
    users = NULL;
    nusers = 0;
    jobs = NULL;
    recs = NULL;
    njobs = 0;
    cap = 0;

    plans = calloc(n, sizeof(nw_plan_t));
    att = calloc(n, sizeof(nw_attempt_t *));

    if (plans == NULL || att == NULL) {
        free(plans);
        free(att);
        for (i = 0; i < n; i++) {
            fw_event_done(evs[i], FW_RETRY, "out of memory");
        }
        return;
    }

    /* plan each event; the malformed ones are dead letters */

    for (i = 0; i < n; i++) {
        if (nw_plan(evs[i]->msg->payload, evs[i]->msg->len, &plans[i], err,
                    sizeof(err)) != 0)
        {
            fw_log_warn("%s @%lld: invalid event: %s", evs[i]->topic,
                        (long long) evs[i]->msg->offset, err);
            fw_event_done(evs[i], FW_FAIL, err);
            continue;
        }

        for (j = 0; j < plans[i].nrcpt; j++) {
            if (!nw_templates_has(c->templates, NULL, plans[i].rcpt[j].template))
            {
                snprintf(err, sizeof(err), "no template \"%s\"",
                         plans[i].rcpt[j].template);
                fw_event_done(evs[i], FW_FAIL, err);
                nw_plan_free(&plans[i]);
                break;
            }
        }

        if (j < plans[i].nrcpt) {
            continue;
        }

        att[i] = calloc(1, sizeof(nw_attempt_t));
        if (att[i] == NULL) {
            nw_plan_free(&plans[i]);
            fw_event_done(evs[i], FW_RETRY, "out of memory");
            continue;
        }

        att[i]->owner.kind = NW_OWNER_EVENT;
        att[i]->owner.ctx = c;
        att[i]->ev = evs[i];
    }

    /* the users and devices of the whole batch */

    if (nw_collect_ids(plans, n, &ids, &nids) != 0
        || nw_users_load(c->store, ids, nids, &users, &nusers) != 0)
    {
        snprintf(err, sizeof(err), "mongo: cannot read users");
        goto retry_all;
    }

    /* the inbox, and the jobs of each recipient and channel */

    for (i = 0; i < n; i++) {
        if (att[i] == NULL) {
            continue;
        }

        bad = 0;

        for (j = 0; j < plans[i].nrcpt && !bad; j++) {
            r = &plans[i].rcpt[j];

            u = nw_user_find(users, nusers, r->user_id);
            if (u == NULL) {
                fw_log_info("event %s: no user %s, not notified",
                            plans[i].id, r->user_id);
                continue;
            }

            o = r->other_id[0] ? nw_user_find(users, nusers, r->other_id)
                               : NULL;
            lang = nw_templates_lang(c->templates, u->lang);

            vars = json_deep_copy(plans[i].vars);
            if (vars == NULL) {
                bad = 1;
                break;
            }

            json_object_set_new(vars, "name",
                                json_string(u->name ? u->name : ""));
            json_object_set_new(vars, "other_name",
                                json_string(o && o->name ? o->name : ""));

            /*
             * each job of a recipient has the same rendering: made once,
             * for the inbox, and copied into the others
             */
            texts = NULL;

            for (k = 0; k < 3 + u->ndevices; k++) {
                nw_channel_t  *ch;
                const char    *to, *suffix;

                ch = NULL;
                to = NULL;
                suffix = NULL;

                if (k == 0) {
                    /* the in-app inbox: always, whatever the preferences */
                    texts = calloc(1, sizeof(nw_job_t));
                    if (texts == NULL) {
                        bad = 1;
                        break;
                    }

                    snprintf(texts->template, sizeof(texts->template), "%s",
                             r->template);

                    if (nw_render_all(c, texts, lang, vars) != 0
                        || nw_inbox_add(c->store, plans[i].id, u->id,
                                        r->template, texts->subject,
                                        texts->short_text, fw_wall_ms()) != 0)
                    {
                        bad = 1;
                        break;
                    }

                    continue;
                }

                if (k == 1) {
                    if ((r->channels & NW_CH_EMAIL) && u->email_on
                        && c->email && nw_email_ok(u->email))
                    {
                        ch = c->email;
                        to = u->email;
                    }

                } else if (k == 2) {
                    if ((r->channels & NW_CH_SMS) && u->sms_on && c->sms
                        && u->phone && u->phone[0] == '+'
                        && strlen(u->phone) < 20)
                    {
                        ch = c->sms;
                        to = u->phone;
                    }

                } else if ((r->channels & NW_CH_PUSH) && u->push_on
                           && c->push)
                {
                    ch = c->push;
                    to = u->devices[k - 3].token;
                    suffix = u->devices[k - 3].id;
                }

                if (ch == NULL) {
                    continue;
                }

                job = nw_job_new(c, ch, att[i], &plans[i], r, suffix, to);

                if (job == NULL || nw_copy_texts(job, texts) != 0) {
                    nw_job_free(job);
                    bad = 1;
                    break;
                }

                until = 0;
                if (u->quiet_start[0] && u->quiet_end[0]) {
                    until = nw_quiet_until(now, u->quiet_start, u->quiet_end,
                                           u->quiet_tz[0] ? u->quiet_tz
                                                          : NULL);
                }

                if (njobs == cap) {
                    cap = cap ? cap * 2 : 256;
                    grown = realloc(jobs, cap * sizeof(nw_pending_t));
                    if (grown == NULL) {
                        nw_job_free(job);
                        bad = 1;
                        break;
                    }
                    jobs = grown;
                }

                jobs[njobs].job = job;
                jobs[njobs].until = until;
                njobs++;
            }

            nw_job_free(texts);
            json_decref(vars);
        }

        if (bad) {
            snprintf(err, sizeof(err), "cannot prepare notifications");
            goto retry_all;
        }
    }

    /*
     * What quiet hours hold back goes to notification_deferred first: a
     * record that says "deferred" must never lack its document.
     */

    for (i = 0; i < njobs; i++) {
        if (jobs[i].until != 0
            && nw_defer(c, jobs[i].job, ((nw_attempt_t *) jobs[i].job->owner)->ev,
                        jobs[i].until) != 0)
        {
            snprintf(err, sizeof(err), "mongo: cannot defer");
            goto retry_all;
        }
    }

    if (nw_store_flush(c->store, err, sizeof(err)) != 0) {
        goto retry_all;
    }

    /*
     * The records, durable before anything is sent; a key that had one
     * already was seen by an earlier delivery of the same event.
     */

    recs = calloc(njobs ? njobs : 1, sizeof(nw_record_t));
    keys = malloc((njobs ? njobs : 1) * sizeof(*keys));
    status = malloc((njobs ? njobs : 1) * sizeof(*status));
    if (recs == NULL || keys == NULL || status == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto retry_all;
    }

    for (i = 0; i < njobs; i++) {
        job = jobs[i].job;
        recs[i].key = job->key;
        recs[i].event_id = job->event_id;
        recs[i].user_id = job->user_id;
        recs[i].channel = job->channel->name;
        recs[i].status = jobs[i].until ? "deferred" : "sending";
    }

    if (nw_records_insert(c->store, recs, njobs, err, sizeof(err)) != 0) {
        goto retry_all;
    }

    for (i = 0, k = 0; i < njobs; i++) {
        if (recs[i].existed) {
            snprintf(keys[k++], sizeof(keys[0]), "%s", jobs[i].job->key);
        }
    }

    if (nw_deliveries_status(c->store, keys, k, status) != 0) {
        snprintf(err, sizeof(err), "mongo: cannot read deliveries");
        goto retry_all;
    }

    for (i = 0, k = 0; i < njobs; i++) {
        job = jobs[i].job;

        if (recs[i].existed) {
            j = k++;

            /* "sending" without an outcome: cut short, it goes again */
            if (strcmp(status[j], "sent") == 0
                || strcmp(status[j], "failed") == 0
                || strcmp(status[j], "deferred") == 0)
            {
                fw_log_debug("%s: already %s", job->key, status[j]);
                nw_job_free(job);
                jobs[i].job = NULL;
                continue;
            }
        }

        if (jobs[i].until != 0) {
            fw_log_info("%s: quiet hours, deferred %lld s", job->key,
                        (long long) (jobs[i].until - now));
            nw_count(job->channel->name, "deferred");
            nw_job_free(job);
            jobs[i].job = NULL;
            continue;
        }

        ((nw_attempt_t *) job->owner)->pending++;
    }

    fw_log_debug("batch of %zu events: %zu jobs, %zu seen before", n, njobs,
                 k);

    for (i = 0; i < njobs; i++) {
        if (jobs[i].job != NULL) {
            nw_sender_submit(c->sender, jobs[i].job);
        }
    }

    for (i = 0; i < n; i++) {
        if (att[i] != NULL && att[i]->pending == 0) {
            fw_event_done(att[i]->ev, FW_OK, NULL);
            free(att[i]);
        }

        if (att[i] != NULL) {
            nw_plan_free(&plans[i]);
        }
    }

    goto done;

retry_all:

    fw_log_warn("batch of %zu events: %s", n, err);

    /* what was gathered is written anyway: each write is idempotent */
    nw_store_flush(c->store, err, sizeof(err));

    for (i = 0; i < njobs; i++) {
        nw_job_free(jobs[i].job);
    }

    for (i = 0; i < n; i++) {
        if (att[i] != NULL) {
            nw_plan_free(&plans[i]);
            fw_event_done(att[i]->ev, FW_RETRY, err);
            free(att[i]);
        }
    }

done:

    nw_users_free(users, nusers);
    free(ids);
    free(keys);
    free(status);
    free(recs);
    free(jobs);
    free(plans);
    free(att);
}


void
nw_job_finished(nw_job_t *job)
{
    nw_owner_t  *o;

    o = job->owner;

    if (o->ctx->finished == NULL) {
        o->ctx->finished_since = fw_now_ms();
    }

    job->next = o->ctx->finished;
    o->ctx->finished = job;
    o->ctx->nfinished++;
}


static void
nw_attempt_job_done(nw_attempt_t *a, nw_job_t *job)
{
    if (job->result == NW_TRANSIENT) {
        a->retry = 1;
        snprintf(a->error, sizeof(a->error), "%s", job->error);
    }

    if (--a->pending == 0) {
        fw_event_done(a->ev, a->retry ? FW_RETRY : FW_OK,
                      a->retry ? a->error : NULL);
        free(a);
    }
}


/*
 * The outcomes of finished jobs, recorded, then their events moved on.
 * Outcomes are written in batches (up to FEIRA_NOTIFY_FLUSH_MS apart or
 * 256 at a time): one insert command for many is far cheaper for the
 * store than one each.
 */

void
nw_poll(void *ctx, int timeout_ms)
{
    int           failed;
    char          err[256];
    nw_ctx_t     *c;
    nw_job_t     *job, *next, *list;
    const char   *st;
    nw_owner_t   *o;

    c = ctx;

    nw_sender_poll(c->sender, timeout_ms);

    if (c->finished == NULL
        || (c->nfinished < 256
            && fw_now_ms() - c->finished_since < c->flush_ms))
    {
        return;
    }

    list = c->finished;
    fw_log_debug("%zu outcomes", c->nfinished);
    c->finished = NULL;
    c->nfinished = 0;

    for (job = list; job != NULL; job = job->next) {
        if (job->result == NW_SENT) {
            st = "sent";

        } else if (job->result == NW_PERMANENT) {
            st = "failed";
            fw_log_warn("%s: failed for good: %s", job->key, job->error);

        } else {
            st = "retry";
            fw_log_info("%s: %s", job->key, job->error);
        }

        nw_count(job->channel->name, st);

        if (job->unregistered) {
            fw_log_info("%s: device %s unregistered, removed", job->key,
                        job->device_id);
            nw_device_delete(c->store, job->device_id);
        }

        nw_delivery_set(c->store, job->key, job->event_id, job->user_id,
                        job->channel->name, st,
                        job->result == NW_SENT ? NULL : job->error);
    }

    failed = (nw_store_flush(c->store, err, sizeof(err)) != 0);

    for (job = list; job != NULL; job = next) {
        next = job->next;
        o = job->owner;

        if (failed && job->result != NW_TRANSIENT) {
            /* not recorded: the event goes again, the key goes again */
            job->result = NW_TRANSIENT;
            snprintf(job->error, sizeof(job->error), "%s", err);
        }

        if (o->kind == NW_OWNER_EVENT) {
            nw_attempt_job_done((nw_attempt_t *) o, job);

        } else {
            nw_deferred_finished(c, job);
        }

        nw_job_free(job);
    }
}


size_t
nw_busy(void *ctx)
{
    nw_ctx_t  *c;

    c = ctx;

    return c->deferred_active + c->nfinished;
}
