/* metrics.h: Prometheus counters and latency histograms shared by every
 * worker process of a pool on a host.  The numbers live in a small file
 * mapped MAP_SHARED (METRICS_FILE), updated with atomic adds, so whichever
 * worker answers a scrape reports the whole pool.  Without METRICS_FILE the
 * counters are per process. */
#ifndef SHOP_METRICS_H
#define SHOP_METRICS_H

#include <stddef.h>

/* Named business counters; names in metrics.c. */
typedef enum {
    METRIC_DB_RETRIES,          /* whole-transaction retries (1213, lost connection...) */
    METRIC_RESERVATIONS,        /* stock reservations made */
    METRIC_RESERVATIONS_SHORT,  /* reservations refused for stock */
    METRIC_ORDERS_PLACED,
    METRIC_ORDERS_CANCELLED,
    METRIC_ORDERS_REJECTED_STOCK,
    METRIC_SWEEP_REPAIRS,
    METRIC_LOGINS_FAILED,
    METRIC_EVENTS_PUBLISHED,    /* outbox rows the broker confirmed (shop-relay) */
    METRIC_EVENTS_UNROUTABLE,   /* of those, returned: no queue was bound to the type */
    METRIC_EVENTS_PROCESSED,    /* events a consumer handled and acked (shop-consume) */
    METRIC_EVENTS_DUPLICATE,    /* of those, already processed (dedupe by id) */
    METRIC_EVENTS_REDELIVERED,  /* deliveries flagged redelivered */
    METRIC_EVENTS_FAILED,       /* handler failures given back to the queue (nack) */
    METRIC_EVENTS_DEAD_LETTERED,/* rejected to the queue's dead-letter queue */
    METRIC_SETTLE_BATCHES,      /* settle consumer: batch transactions (events/settle.c) */
    METRIC_SETTLE_FALLBACKS,    /* of those, failed and redone one event per transaction */
    METRIC_COUNT
} metric_counter;

/* Routes a service may have: a larger table is a programmer error. */
#define METRICS_ROUTES 40

/* Maps the shared file for a service with n routes (n <= METRICS_ROUTES),
 * each then named with metrics_name_route().  0 or -1 (then counting falls
 * back to process-local memory). */
int metrics_init(const char *service, size_t n);

/* Labels route i (< n) "method pattern" in the exposition; the strings are
 * not copied (a route table's literals). */
void metrics_name_route(size_t i, const char *method, const char *pattern);

/* Records one finished request: route index (n for "no route"), status, ms. */
void metrics_observe(size_t route_index, int status, double ms);

/* Adds to a named counter; c must be one of metric_counter. */
void metrics_inc(metric_counter c, unsigned long long by);

/* Writes the exposition text into a malloc'd buffer; caller frees.  The
 * named counters of the files METRICS_ALSO lists ("service:path ...", the
 * host's consumers that serve no HTTP) follow this pool's own, each
 * labelled with its service. */
char *metrics_render(size_t *len);

#endif
