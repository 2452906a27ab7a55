/* metrics.h: Prometheus counters and latency histograms shared by every
 * worker process of a pool on a host.  The numbers live in a small file
 * mapped MAP_SHARED (METRICS_FILE), updated with atomic adds, so whichever
 * worker answers a scrape reports the whole pool.  Without METRICS_FILE the
 * counters are per process. */
#ifndef SHOP_METRICS_H
#define SHOP_METRICS_H

#include <stddef.h>
#include "route.h"

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
    METRIC_COUNT
} metric_counter;

/* Maps the shared file for this service's route table (n routes).  0 or -1
 * (then counting falls back to process-local memory). */
int metrics_init(const char *service, const route *table, size_t n);

/* Records one finished request: route index (n for "no route"), status, ms. */
void metrics_observe(size_t route_index, int status, double ms);

void metrics_inc(metric_counter c, unsigned long long by);

/* Writes the exposition text into a malloc'd buffer; caller frees. */
char *metrics_render(size_t *len);

#endif
