/* outbox.c: see outbox.h. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

int outbox_claim(outbox_row *rows, int max)
{
    db_res *r = db_query("SELECT id, event_type, subject, payload, created_at,"
                         " COALESCE(request_id, '') FROM outbox"
                         " WHERE published_at IS NULL ORDER BY id LIMIT ?"
                         " FOR UPDATE SKIP LOCKED", "i", (int64_t)max);
    if (!r)
        return DB_ERROR;
    int n = db_rows(r);
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++) {
        outbox_row *o = &rows[i];
        memset(o, 0, sizeof *o);
        o->id = db_int(r, i, 0);
        db_copy(o->type, sizeof o->type, r, i, 1);
        db_copy(o->subject, sizeof o->subject, r, i, 2);
        db_copy(o->request_id, sizeof o->request_id, r, i, 5);
        db_time_rfc3339(db_str(r, i, 4), o->time, sizeof o->time);
        const char *p = db_str(r, i, 3);
        o->payload = strdup(p ? p : "null");
        if (!o->payload) {
            log_error("outbox: out of memory");
            outbox_rows_free(rows, i);
            db_free(r);
            return DB_ERROR;
        }
    }
    db_free(r);
    return n;
}

void outbox_rows_free(outbox_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].payload);
        rows[i].payload = NULL;
    }
}

int outbox_mark_published(const int64_t *ids, int n)
{
    return db_exec_ids("UPDATE outbox SET published_at = UTC_TIMESTAMP(3)"
                       " WHERE id IN " DB_IDS " AND published_at IS NULL", ids, n) < 0
               ? DB_ERROR : DB_OK;
}

int outbox_lag(double *age_s, int64_t *pending)
{
    db_res *r = db_query("SELECT TIMESTAMPDIFF(MICROSECOND, created_at, UTC_TIMESTAMP(3))"
                         " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1", "");
    if (!r)
        return DB_ERROR;
    *age_s = db_rows(r) > 0 ? (double)db_int(r, 0, 0) / 1e6 : 0.0;
    if (*age_s < 0)
        *age_s = 0;
    db_free(r);
    r = db_query("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL", "");
    if (!r)
        return DB_ERROR;
    *pending = db_rows(r) > 0 ? db_int(r, 0, 0) : 0;
    db_free(r);
    return DB_OK;
}

int outbox_metrics(const char *service, char *out, size_t n)
{
    double age = 0;
    int64_t pending = 0;
    if (outbox_lag(&age, &pending) != DB_OK) {
        log_warn("metrics: outbox lag not read (database)");
        return -1;
    }
    int len = snprintf(out, n,
                       "# HELP shop_outbox_lag_seconds Age of the oldest outbox row the broker has"
                       " not confirmed (0: none pending).\n"
                       "# TYPE shop_outbox_lag_seconds gauge\n"
                       "shop_outbox_lag_seconds{service=\"%s\"} %.3f\n"
                       "# HELP shop_outbox_pending Outbox rows not yet published.\n"
                       "# TYPE shop_outbox_pending gauge\n"
                       "shop_outbox_pending{service=\"%s\"} %lld\n",
                       service, age, service, (long long)pending);
    return len < 0 || (size_t)len >= n ? -1 : len;
}
