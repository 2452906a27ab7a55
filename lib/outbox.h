/* outbox.h: a service's transactional outbox, the table `outbox` in its own
 * database, as the relay (events/relay.c) and the service's /metrics read
 * it.  Every service that emits events has one, with the same columns:
 *   id BIGINT UNSIGNED AUTO_INCREMENT PK, event_type VARCHAR(64),
 *   subject VARCHAR(64) (the entity's id as text), payload TEXT (the
 *   CloudEvent's data, JSON), created_at DATETIME(3), published_at
 *   DATETIME(3) NULL (NULL: not yet confirmed by the broker), request_id
 *   VARCHAR(128) NULL (the X-Request-ID of the change's request),
 *   KEY outbox_pending (published_at, id).
 * The service writes a row in the transaction of the change it announces;
 * the relay publishes it and only then sets published_at (docs/EVENTS.md). */
#ifndef SHOP_OUTBOX_H
#define SHOP_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

typedef struct outbox_row {
    int64_t id;
    char type[65];
    char subject[65];
    char time[32];          /* created_at, RFC 3339 UTC */
    char request_id[129];   /* "" when the change had no request */
    char *payload;          /* malloc'd */
} outbox_row;

/* Inside a transaction (db_tx): locks up to max pending rows, lowest id
 * first, skipping rows another relay has locked (FOR UPDATE SKIP LOCKED).
 * Returns the count (rows[0..count) filled; free with outbox_rows_free), or
 * DB_ERROR. */
int outbox_claim(outbox_row *rows, int max);
void outbox_rows_free(outbox_row *rows, int n);

/* Inside the same transaction: published_at = now for each id. */
int outbox_mark_published(const int64_t *ids, int n);

/* The age in seconds of the oldest pending row (0 when none) and how many
 * are pending, with one indexed query each.  0 or DB_ERROR. */
int outbox_lag(double *age_s, int64_t *pending);

/* Prometheus text for /metrics (server_set_metrics_extra): the gauges
 * shop_outbox_lag_seconds and shop_outbox_pending for `service`.  Returns
 * the length written into out[n], or -1 when the database did not answer
 * (then nothing is written: the scrape shows the gauges missing). */
int outbox_metrics(const char *service, char *out, size_t n);

#endif
