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

enum { NOTIFY_SEND_FAILED = STORE_GUARD_MIN - 1 };

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
    const char *to, *message;
    bool sent;               /* this process's relay accepted it (kept across db_tx reruns) */
    bool fresh;              /* this transaction sent it (not a duplicate) */
} notify_args;

static int notify_tx(void *arg)
{
    notify_args *a = arg;
    a->fresh = false;
    if (db_exec("INSERT INTO sent_notifications (event_id, event_type, order_id, user_id, recipient,"
                " created_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(3))"
                " ON DUPLICATE KEY UPDATE event_id = event_id", "ssiis", a->ev->id, a->ev->type,
                a->order_id, a->user_id, a->to) < 0)
        return DB_ERROR;
    db_res *r = db_query("SELECT sent_at IS NOT NULL FROM sent_notifications WHERE event_id = ? FOR UPDATE",
                         "s", a->ev->id);
    if (!r)
        return DB_ERROR;
    bool done = db_rows(r) == 1 && db_int(r, 0, 0) == 1;
    db_free(r);
    if (done)
        return 0;
    if (!a->sent) {
        if (mail_send(notify_url, notify_from, a->to, a->message) != 0)
            return NOTIFY_SEND_FAILED;
        a->sent = true;
    }
    if (db_exec("UPDATE sent_notifications SET sent_at = UTC_TIMESTAMP(3) WHERE event_id = ?", "s",
                a->ev->id) != 1)
        return DB_ERROR;
    a->fresh = true;
    return 1;
}

static bool int_member(json_object *o, const char *k, int64_t *out)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return *out > 0;
}

int notify_handle(const event *ev, void *ctx)
{
    (void)ctx;
    if (strcmp(ev->type, "order.confirmed") != 0 && strcmp(ev->type, "order.cancelled") != 0) {
        log_warn("notify: event %s of type %s ignored", ev->id, ev->type);
        return CONSUME_OK;
    }
    notify_args a = {.ev = ev};
    if (!ev->data || !int_member(ev->data, "order_id", &a.order_id) ||
        !int_member(ev->data, "user_id", &a.user_id) || strlen(ev->id) > 128) {
        log_error("notify: event %s (%s) lacks data.order_id / data.user_id", ev->id, ev->type);
        return CONSUME_DEAD;
    }
    db_res *r = db_query("SELECT email, name FROM shop_auth.users WHERE id = ?", "i", a.user_id);
    if (!r) {
        log_warn("notify: event %s: the recipient could not be read (database, errno %u)", ev->id,
                 db_errno());
        return CONSUME_RETRY;
    }
    if (db_rows(r) == 0) {
        db_free(r);
        log_error("notify: event %s: user %" PRId64 " does not exist", ev->id, a.user_id);
        return CONSUME_DEAD;
    }
    char to[256], name[801];
    db_copy(to, sizeof to, r, 0, 0);
    db_copy(name, sizeof name, r, 0, 1);
    db_free(r);
    char *message = mail_format_order(ev->type, ev->data, ev->id, notify_from, to, name, time(NULL));
    if (!message) {
        log_error("notify: event %s (%s): no email can be made of it (data or address %s)", ev->id,
                  ev->type, to);
        return CONSUME_DEAD;
    }
    a.to = to;
    a.message = message;
    int rc = db_tx(notify_tx, &a);
    free(message);
    if (rc == NOTIFY_SEND_FAILED) {
        log_warn("notify: event %s: the relay did not take the email; later", ev->id);
        return CONSUME_RETRY;
    }
    if (rc < 0) {
        log_warn("notify: event %s: database (%d)%s; later", ev->id, rc,
                 a.sent ? ": the email went out, it may go once more" : "");
        return CONSUME_RETRY;
    }
    if (a.fresh)
        log_info("notify: event %s: order %" PRId64 " %s email sent to user %" PRId64, ev->id,
                 a.order_id, ev->type, a.user_id);
    else
        log_info("notify: event %s already sent", ev->id);
    return CONSUME_OK;
}
