/* server.h: the FastCGI accept loop shared by the three services: one request
 * at a time per worker process, request id taken from X-Request-ID (set by the
 * edge) or made here, route dispatch, the access log line. */
#ifndef SHOP_SERVER_H
#define SHOP_SERVER_H

#include <stdbool.h>
#include "route.h"

/* The setup every program of a service runs first (worker, sweep, CLI):
 * logging as `service`, the configuration ($SHOP_CONFIG, LOG_LEVEL),
 * libsodium, SIGPIPE ignored (a dropped connection is an error, not death),
 * the DB settings, and DB retries counted in metrics.  Returns 0, or -1
 * (logged). */
int server_setup(const char *service);

/* server_setup(), then metrics for the route table and the token keys, then
 * serves until the socket closes.  `init` (may be NULL) runs once after the
 * common setup.  Returns the process exit code. */
/* GET /<service>/health, the same for every service: 200 {"status": "ok",
 * "db": "ok"} when the database answers, else 503 problem+json `unavailable`
 * with "db": "unavailable" and Retry-After.  Never cached. */
int server_health(http_req *req);

int server_run(const char *service, const route *table, size_t n, int (*init)(void));

/* Called before server_run(): fn appends its own Prometheus text (at most
 * n bytes, e.g. outbox_metrics) to every /metrics answer; it returns the
 * length written, or < 0 to add nothing. */
void server_set_metrics_extra(int (*fn)(const char *service, char *out, size_t n));

/* A service's background sweep (`<svc>.fcgi --sweep` / `--sweep-once`),
 * after server_setup(): pass() once when `once`, else every `key` seconds
 * of the config (default `interval`, at least 1) until SIGTERM or SIGINT.
 * pass() returns < 0 when a step failed.  Returns the process exit code. */
int server_sweep(const char *service, int (*pass)(void), const char *key, long long interval,
                 bool once);

#endif
