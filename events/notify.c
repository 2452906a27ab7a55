/* notify.c: see notify.h. */
#include "notify.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "mail.h"

static const char *notify_url, *notify_from;

int notify_init(void)
{
    notify_url = config_get("SMTP_URL", NULL);
    notify_from = config_get("MAIL_FROM", NULL);
    if (!notify_url || (strncmp(notify_url, "smtp://", 7) != 0 && strncmp(notify_url, "smtps://", 8) != 0)) {
        log_error("notify: SMTP_URL must be an smtp:// or smtps:// URL");
        return -1;
    }
    if (!mail_address_ok(notify_from)) {
        log_error("notify: MAIL_FROM must be a plain email address");
        return -1;
    }
    return 0;
}

typedef struct notify_args {
    const event *ev;
    int64_t order_id, user_id;
    char to[256];
    char *message;           /* the email, owned (notify_prepare) */
    bool sent;               /* this process's relay accepted it (kept across db_tx reruns) */
    bool fresh;              /* this transaction sent it (not a duplicate) */
    bool refused;            /* the relay did not take it in this transaction */
    int at;                  /* its index in a batch */
} notify_args;

/* Emails this process handed to the relay whose rows are not committed yet:
 * the batch's commit failed (the database lost its quorum, say).  The
 * consumer holds such events until the database answers again and then
 * hands them to notify_handle_batch once more (consume.c), with fresh
 * notify_args; this remembers that their emails went out, so they are
 * recorded, not sent a second time.  A ring: the oldest of more than
 * NOTIFY_UNRECORDED such emails is forgotten (it may then go twice). */
#define NOTIFY_UNRECORDED 256
static char *unrecorded[NOTIFY_UNRECORDED];
static int unrecorded_next;

static int unrecorded_find(const char *id)
{
    for (int i = 0; i < NOTIFY_UNRECORDED; i++)
        if (unrecorded[i] && strcmp(unrecorded[i], id) == 0)
            return i;
    return -1;
}

static void unrecorded_add(const char *id)
{
    if (unrecorded_find(id) >= 0)
        return;
    free(unrecorded[unrecorded_next]);
    unrecorded[unrecorded_next] = strdup(id);   /* NULL: not remembered */
    unrecorded_next = (unrecorded_next + 1) % NOTIFY_UNRECORDED;
}

static void unrecorded_drop(const char *id)
{
    int i = unrecorded_find(id);
    if (i >= 0) {
        free(unrecorded[i]);
        unrecorded[i] = NULL;
    }
}

static bool int_member(json_object *o, const char *k, int64_t *out)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return *out > 0;
}

/* Reads what ev asks for into *a: -1 when it names an order and its user
 * (the recipient still to be read), else the verdict (CONSUME_OK for a type
 * notify ignores, CONSUME_DEAD for an event that can never make an email). */
static int notify_parse(const event *ev, notify_args *a)
{
    memset(a, 0, sizeof *a);
    a->ev = ev;
    consume_log_event(ev);
    if (strcmp(ev->type, "order.confirmed") != 0 && strcmp(ev->type, "order.cancelled") != 0) {
        log_warn("notify: event %s of type %s ignored", ev->id, ev->type);
        return CONSUME_OK;
    }
    if (!ev->data || !int_member(ev->data, "order_id", &a->order_id) ||
        !int_member(ev->data, "user_id", &a->user_id) || strlen(ev->id) > 128) {
        log_error("notify: event %s (%s) lacks data.order_id / data.user_id", ev->id, ev->type);
        return CONSUME_DEAD;
    }
    return -1;
}

/* The email of a parsed event, to its user's row in r (id, email, name):
 * -1 when there is one to send (a->message to be freed), else the verdict
 * (CONSUME_DEAD: no such user, or no email can be made of the event). */
static int notify_compose(notify_args *a, const db_res *r)
{
    int row = -1;
    consume_log_event(a->ev);
    for (int k = 0; k < db_rows(r); k++)
        if (db_int(r, k, 0) == a->user_id)
            row = k;
    if (row < 0) {
        log_error("notify: event %s: user %" PRId64 " does not exist", a->ev->id, a->user_id);
        return CONSUME_DEAD;
    }
    char name[801];
    db_copy(a->to, sizeof a->to, r, row, 1);
    db_copy(name, sizeof name, r, row, 2);
    a->message = mail_format_order(a->ev->type, a->ev->data, a->ev->id, notify_from, a->to, name,
                                   time(NULL));
    if (!a->message) {
        log_error("notify: event %s (%s): no email can be made of it (data or address %s)",
                  a->ev->id, a->ev->type, a->to);
        return CONSUME_DEAD;
    }
    return -1;
}

/* evs[0..n) into a[0..m), the emails to send (a[j].at: the event's index),
 * their recipients read DB_IDS_MAX users per query.  Every other event gets
 * its verdict in verdicts[] (CONSUME_RETRY when its recipient could not be
 * read).  Returns m. */
static int notify_prepare(const event *evs, int n, notify_args *a, int *verdicts)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int v = notify_parse(&evs[i], &a[m]);
        if (v >= 0) {
            verdicts[i] = v;
            continue;
        }
        a[m++].at = i;
    }
    consume_log_event(NULL);        /* the recipients' query is the batch's */
    int kept = 0;
    for (int at = 0; at < m; at += DB_IDS_MAX) {
        int c = m - at < DB_IDS_MAX ? m - at : DB_IDS_MAX;
        int64_t uids[DB_IDS_MAX];
        for (int j = 0; j < c; j++)
            uids[j] = a[at + j].user_id;
        db_res *r = db_query_ids("SELECT id, email, name FROM shop_auth.users WHERE id IN " DB_IDS,
                                 uids, c);
        if (!r)
            log_warn("notify: the recipients of %d events could not be read (database, errno %u)",
                     c, db_errno());
        for (int j = at; j < at + c; j++) {
            int v = r ? notify_compose(&a[j], r) : CONSUME_RETRY;
            if (v >= 0)
                verdicts[a[j].at] = v;
            else
                a[kept++] = a[j];       /* kept <= j: nothing unread is overwritten */
        }
        db_free(r);
    }
    return kept;
}

/* Inside the caller's transaction: the event's row inserted and locked;
 * unless it was sent before, the email sent (once per process: a->sent
 * survives db_tx's reruns).  A new row is written as sent up front, one
 * statement for the usual case: nobody sees it before the commit, and it is
 * deleted again when the relay refuses the email.  A row that was there
 * (a redelivery) is read under its lock.  DB_OK (a->refused when the relay
 * did not take it: nothing recorded) or a db.h code.  A db_tx_fn on a
 * notify_args, alone or in consume_in_one_tx. */
static int notify_apply(void *arg)
{
    notify_args *a = arg;
    a->fresh = a->refused = false;
    consume_log_event(a->ev);       /* mail.c's lines and the database's */
    int64_t added = db_exec("INSERT IGNORE INTO sent_notifications (event_id, event_type, order_id,"
                            " user_id, recipient, created_at, sent_at)"
                            " VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", "ssiis",
                            a->ev->id, a->ev->type, a->order_id, a->user_id, a->to);
    if (added < 0)
        return DB_ERROR;
    if (added == 0) {
        db_res *r = db_query("SELECT sent_at IS NOT NULL FROM sent_notifications"
                             " WHERE event_id = ? FOR UPDATE", "s", a->ev->id);
        if (!r)
            return DB_ERROR;
        bool done = db_rows(r) == 1 && db_int(r, 0, 0) == 1;
        db_free(r);
        if (done)
            return DB_OK;
    }
    if (!a->sent && unrecorded_find(a->ev->id) >= 0) {
        log_info("notify: event %s: its email went out before; recording it", a->ev->id);
        a->sent = true;
    }
    if (!a->sent) {
        if (mail_send(notify_url, notify_from, a->to, a->message) != 0) {
            a->refused = true;
            if (added == 1 && db_exec("DELETE FROM sent_notifications WHERE event_id = ?", "s",
                                      a->ev->id) != 1)
                return DB_ERROR;
            return DB_OK;
        }
        a->sent = true;
        unrecorded_add(a->ev->id);
    }
    if (added == 0 && db_exec("UPDATE sent_notifications SET sent_at = UTC_TIMESTAMP(3)"
                              " WHERE event_id = ?", "s", a->ev->id) != 1)
        return DB_ERROR;
    a->fresh = true;
    return DB_OK;
}

/* After the commit: the verdict, with its log line. */
static int notify_report(const notify_args *a)
{
    consume_log_event(a->ev);
    unrecorded_drop(a->ev->id);     /* recorded now, or not sent */
    if (a->refused) {
        log_warn("notify: event %s: the relay did not take the email; later", a->ev->id);
        return CONSUME_RETRY;
    }
    if (a->fresh)
        log_info("notify: event %s: order %" PRId64 " %s email sent to user %" PRId64, a->ev->id,
                 a->order_id, a->ev->type, a->user_id);
    else
        log_info("notify: event %s already sent", a->ev->id);
    return CONSUME_OK;
}

/* One event in a transaction of its own: a verdict. */
static int notify_one(notify_args *a)
{
    consume_log_event(a->ev);
    int rc = db_tx(notify_apply, a);
    if (rc < 0) {
        log_warn("notify: event %s: database (%d)%s; later", a->ev->id, rc,
                 a->sent ? ": the email went out (recorded later, not sent again here)" : "");
        return CONSUME_RETRY;
    }
    return notify_report(a);
}

/* Event id order: two hosts' consumers holding duplicates of one batch
 * lock its rows in the same order. */
static int by_event_id(const void *x, const void *y)
{
    const notify_args *a = x, *b = y;
    return strcmp(a->ev->id, b->ev->id);
}

void notify_handle_batch(const event *evs, int n, int *verdicts, void *ctx)
{
    (void)ctx;
    static notify_args a[CONSUME_BATCH_MAX];
    /* a[0..m): to apply, then in event id order */
    int m = notify_prepare(evs, n < CONSUME_BATCH_MAX ? n : CONSUME_BATCH_MAX, a, verdicts);
    if (m == 0)
        return;
    qsort(a, (size_t)m, sizeof *a, by_event_id);
    int rc = consume_in_one_tx(a, m, sizeof *a, notify_apply);
    consume_log_event(NULL);        /* the batch's lines carry no request id */
    if (rc >= 0) {
        for (int j = 0; j < m; j++)
            verdicts[a[j].at] = notify_report(&a[j]);
    } else if (rc == DB_UNAVAILABLE || m == 1) {
        bool sent = false;
        for (int j = 0; j < m; j++)
            sent = sent || a[j].sent;
        log_warn("notify: a batch of %d events not recorded (database, %d)%s; later", m, rc,
                 sent ? ": emails that went out are recorded later, not sent again here" : "");
        for (int j = 0; j < m; j++)
            verdicts[a[j].at] = CONSUME_RETRY;
    } else {
        /* Maybe one event's fault (a poison message): each alone, so the
         * others go through; a->sent keeps the emails already sent from
         * going twice. */
        log_warn("notify: a batch of %d events failed (database, %d): one transaction each", m,
                 rc);
        for (int j = 0; j < m; j++)
            verdicts[a[j].at] = notify_one(&a[j]);
    }
    for (int j = 0; j < m; j++)
        free(a[j].message);
}
