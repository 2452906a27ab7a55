/* metrics.c: see metrics.h.  Layout of the shared region: for each route
 * (plus one slot for unmatched paths) a request count per status code slot
 * and a cumulative latency histogram; then the named counters.  Everything
 * is a uint64_t updated with __atomic_fetch_add, so no lock is needed and a
 * crashed worker cannot leave the region inconsistent. */
#include <assert.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "text.h"
#include "metrics.h"

/* Programmer errors (a bad counter or route index, a route table larger than
 * the file's layout) are assert()s, live in every build (the Makefile never
 * defines NDEBUG). */
#ifdef NDEBUG
#error "shop builds keep assert() live: do not define NDEBUG"
#endif

static const int metrics_statuses[] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412,
                                       413, 415, 422, 428, 429, 500, 502, 503, 0 /* other */};
#define METRICS_NSTATUS (sizeof metrics_statuses / sizeof metrics_statuses[0])
static const double metrics_buckets[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define METRICS_NBUCKET (sizeof metrics_buckets / sizeof metrics_buckets[0])

static const char *const counter_names[METRIC_COUNT] = {
    "shop_db_tx_retries_total",       "shop_reservations_total",
    "shop_reservations_short_total",  "shop_orders_placed_total",
    "shop_orders_cancelled_total",    "shop_orders_rejected_stock_total",
    "shop_sweep_repairs_total",       "shop_logins_failed_total",
    "shop_events_published_total",    "shop_events_unroutable_total",
    "shop_events_processed_total",    "shop_events_duplicate_total",
    "shop_events_redelivered_total",  "shop_events_failed_total",
    "shop_events_dead_lettered_total", "shop_events_settle_batches_total",
    "shop_events_settle_fallbacks_total",
};

typedef struct metrics_route {
    uint64_t by_status[METRICS_NSTATUS];
    uint64_t bucket[METRICS_NBUCKET];   /* observations <= bound (non-cumulative here) */
    uint64_t count;
    uint64_t sum_us;
} metrics_route;

typedef struct metrics_region {
    uint64_t magic;
    metrics_route routes[METRICS_ROUTES + 1];
    uint64_t counters[METRIC_COUNT];
} metrics_region;

#define METRICS_MAGIC 0x73686f706d657472ULL

static metrics_region local_region;
static metrics_region *region = &local_region;
static struct {
    const char *method, *pattern;
} metrics_routes[METRICS_ROUTES];
static size_t metrics_n;
static const char *metrics_service = "shop";

void metrics_name_route(size_t i, const char *method, const char *pattern)
{
    assert(i < metrics_n && method && pattern);
    metrics_routes[i].method = method;
    metrics_routes[i].pattern = pattern;
}

int metrics_init(const char *service, size_t n)
{
    assert(n <= METRICS_ROUTES);   /* raise METRICS_ROUTES (the file's layout) */
    metrics_service = service;
    metrics_n = n;
    const char *path = config_get("METRICS_FILE", NULL);
    if (!path || !*path)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("metrics: cannot open %s", path);
        return -1;
    }
    /* Growing a file is idempotent, so racing workers agree on its size. */
    struct stat st;
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < sizeof(metrics_region) &&
                                ftruncate(fd, sizeof(metrics_region)) != 0)) {
        log_error("metrics: cannot size %s", path);
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, sizeof(metrics_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        log_error("metrics: cannot map %s", path);
        return -1;
    }
    region = m;
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&region->magic, &zero, METRICS_MAGIC, false, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    return 0;
}

static void add(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

void metrics_observe(size_t route_index, int status, double ms)
{
    assert(route_index <= metrics_n);
    metrics_route *r = &region->routes[route_index];
    size_t s = METRICS_NSTATUS - 1;
    for (size_t i = 0; i < METRICS_NSTATUS - 1; i++)
        if (metrics_statuses[i] == status) {
            s = i;
            break;
        }
    add(&r->by_status[s], 1);
    for (size_t b = 0; b < METRICS_NBUCKET; b++)
        if (ms <= metrics_buckets[b]) {
            add(&r->bucket[b], 1);
            break;
        }
    add(&r->count, 1);
    add(&r->sum_us, ms > 0 ? (uint64_t)(ms * 1000) : 0);
}

void metrics_inc(metric_counter c, unsigned long long by)
{
    assert((unsigned)c < METRIC_COUNT);
    add(&region->counters[c], by);
}

static uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void route_labels(size_t i, char *out, size_t n)
{
    if (i < metrics_n)
        snprintf(out, n, "service=\"%s\",method=\"%s\",route=\"%s\"", metrics_service,
                 metrics_routes[i].method ? metrics_routes[i].method : "",
                 metrics_routes[i].pattern ? metrics_routes[i].pattern : "");
    else
        snprintf(out, n, "service=\"%s\",method=\"\",route=\"unmatched\"", metrics_service);
}

/* Another process's file, read-only (METRICS_ALSO): its named counters
 * are reported beside this pool's, labelled with its service. */
typedef struct metrics_other {
    char service[32];
    const metrics_region *r;
} metrics_other;

#define METRICS_OTHERS_MAX 4

/* Maps the files METRICS_ALSO names ("service:path ...").  A file missing,
 * short or never initialised (its consumer has not started yet) is left
 * out of this scrape.  Returns how many were mapped. */
static int metrics_map_others(metrics_other *o)
{
    const char *p = config_get("METRICS_ALSO", "");
    int n = 0;
    while (p && *p && n < METRICS_OTHERS_MAX) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len == 0)
            break;
        const char *colon = memchr(p, ':', len);
        char path[512];
        size_t svc = colon ? (size_t)(colon - p) : 0;
        if (!colon || svc == 0 || svc >= sizeof o[n].service || len - svc - 1 >= sizeof path) {
            log_warn("metrics: METRICS_ALSO entry \"%.*s\" is not service:path", (int)len, p);
            p += len;
            continue;
        }
        memcpy(o[n].service, p, svc);
        o[n].service[svc] = '\0';
        memcpy(path, colon + 1, len - svc - 1);
        path[len - svc - 1] = '\0';
        p += len;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(metrics_region)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        void *m = mmap(NULL, sizeof(metrics_region), PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED) {
            log_warn("metrics: cannot map %s", path);
            continue;
        }
        o[n].r = m;
        if (__atomic_load_n(&o[n].r->magic, __ATOMIC_RELAXED) != METRICS_MAGIC) {
            munmap(m, sizeof(metrics_region));
            continue;
        }
        n++;
    }
    return n;
}

char *metrics_render(size_t *len)
{
    text_buf b = {0};
    char labels[256];
    text_put(&b, "# HELP shop_http_requests_total Requests answered, by route and status.\n"
            "# TYPE shop_http_requests_total counter\n");
    for (size_t i = 0; i <= metrics_n; i++) {
        route_labels(i, labels, sizeof labels);
        for (size_t s = 0; s < METRICS_NSTATUS; s++) {
            uint64_t v = get(&region->routes[i].by_status[s]);
            if (v == 0)
                continue;
            if (metrics_statuses[s])
                text_put(&b, "shop_http_requests_total{%s,status=\"%d\"} %llu\n", labels,
                    metrics_statuses[s], (unsigned long long)v);
            else
                text_put(&b, "shop_http_requests_total{%s,status=\"other\"} %llu\n", labels,
                    (unsigned long long)v);
        }
    }
    text_put(&b, "# HELP shop_http_request_duration_seconds Time to answer, by route.\n"
            "# TYPE shop_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= metrics_n; i++) {
        metrics_route *r = &region->routes[i];
        uint64_t count = get(&r->count);
        if (count == 0)
            continue;
        route_labels(i, labels, sizeof labels);
        uint64_t cum = 0;
        for (size_t k = 0; k < METRICS_NBUCKET; k++) {
            cum += get(&r->bucket[k]);
            text_put(&b, "shop_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", labels,
                metrics_buckets[k] / 1000.0, (unsigned long long)cum);
        }
        text_put(&b, "shop_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels,
            (unsigned long long)count);
        text_put(&b, "shop_http_request_duration_seconds_sum{%s} %.6f\n", labels,
            (double)get(&r->sum_us) / 1e6);
        text_put(&b, "shop_http_request_duration_seconds_count{%s} %llu\n", labels,
            (unsigned long long)count);
    }
    metrics_other others[METRICS_OTHERS_MAX];
    int n_others = metrics_map_others(others);
    for (int c = 0; c < METRIC_COUNT; c++) {
        text_put(&b, "# TYPE %s counter\n%s{service=\"%s\"} %llu\n", counter_names[c], counter_names[c],
            metrics_service, (unsigned long long)get(&region->counters[c]));
        for (int k = 0; k < n_others; k++)
            text_put(&b, "%s{service=\"%s\"} %llu\n", counter_names[c], others[k].service,
                (unsigned long long)get(&others[k].r->counters[c]));
    }
    for (int k = 0; k < n_others; k++)
        munmap((void *)others[k].r, sizeof(metrics_region));
    size_t n = b.len;
    char *text = text_take(&b);
    if (text)
        *len = n;
    return text;
}
