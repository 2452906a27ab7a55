/* server.c: the FastCGI accept loop.  A worker serves one request at a time:
 * it builds an http_req from the CGI parameters (request id, decoded path,
 * query, body up to the limit), hands it to the route table, makes sure a
 * reply was sent, writes the access log line and frees everything. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcgiapp.h>
#include <sodium.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include "revoke.h"
#include "server.h"
#include "token.h"

/* Uses the edge's X-Request-ID when valid, else makes one. */
static void server_request_id(http_req *req)
{
    const char *id = http_header(req, "X-Request-ID");
    if (http_request_id_valid(id)) {
        snprintf(req->request_id, sizeof req->request_id, "%s", id);
        return;
    }
    unsigned char raw[12];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(req->request_id, sizeof req->request_id, raw, sizeof raw);
}

/* Reads at most HTTP_MAX_BODY + 1 bytes: enough to know a body is too big. */
static int server_read_body(http_req *req, FCGX_Request *f)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", f->envp);
    long long want = cl ? strtoll(cl, NULL, 10) : 0;
    if (want <= 0)
        return 0;
    if (want > HTTP_MAX_BODY + 1)
        want = HTTP_MAX_BODY + 1;
    req->body = malloc((size_t)want + 1);
    if (!req->body)
        return -1;
    int got = FCGX_GetStr(req->body, (int)want, f->in);
    req->body_len = got > 0 ? (size_t)got : 0;
    req->body[req->body_len] = '\0';
    return 0;
}

/* The pool's metrics, for Prometheus: only on the host's internal listener,
 * the lighttpd socket that sets SHOP_LISTENER=internal (lighttpd.conf.in)
 * and that HAProxy never proxies to.  Elsewhere the path is an unknown one. */
static char server_metrics_path[64];

static bool server_internal_listener(FCGX_Request *f)
{
    const char *l = FCGX_GetParam("SHOP_LISTENER", f->envp);
    return l && strcmp(l, "internal") == 0;
}

static int (*server_metrics_more)(const char *service, char *out, size_t n);
static const char *server_service = "shop";

void server_set_metrics_extra(int (*fn)(const char *service, char *out, size_t n))
{
    server_metrics_more = fn;
}

static void server_metrics(http_req *req)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    if (!text) {
        problem_internal(req, "metrics: out of memory");
        return;
    }
    if (server_metrics_more) {
        enum { MORE = 2048 };
        char *grown = realloc(text, len + MORE);
        if (!grown) {
            free(text);
            problem_internal(req, "metrics: out of memory");
            return;
        }
        text = grown;
        int more = server_metrics_more(server_service, text + len, MORE);
        if (more > 0)
            len += (size_t)more;
    }
    http_reply_raw(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}

/* ALLOW_FAULT_INJECTION=1 (tests only), read once at start. */
static bool server_faults;

static void server_handle(const route *table, size_t n, FCGX_Request *f)
{
    http_req req;
    memset(&req, 0, sizeof req);
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    req.fcgi = f;
    req.env = f->envp;
    req.method = FCGX_GetParam("REQUEST_METHOD", f->envp);
    if (!req.method)
        req.method = "GET";
    server_request_id(&req);

    const char *uri = FCGX_GetParam("REQUEST_URI", f->envp);
    if (!uri)
        uri = "/";
    size_t plen = strcspn(uri, "?");
    req.query = uri[plen] == '?' ? uri + plen + 1 : "";
    req.path = malloc(plen + 1);
    log_set_request(req.request_id, req.method, req.path);

    if (!req.path || server_read_body(&req, f) != 0) {
        problem_internal(&req, "out of memory reading the request");
    } else if (http_decode_path(uri, plen, req.path, plen + 1) != 0) {
        req.path[0] = '\0';
        problem_send(&req, 400, "bad_request", "The request path is not valid.");
    } else if (strcmp(req.path, server_metrics_path) == 0 && strcmp(req.method, "GET") == 0 &&
               server_internal_listener(f)) {
        req.route_index = n;
        server_metrics(&req);
    } else {
        const char *fault = server_faults ? http_header(&req, "X-Fault-Inject") : NULL;
        db_fault_lose_next_commit(fault && strcmp(fault, "commit-lost") == 0);
        route_dispatch(table, n, &req);
        db_fault_lose_next_commit(false);
    }
    if (!req.status)
        problem_internal(&req, "handler returned without a reply");

    metrics_observe(req.route_index, req.status, http_elapsed_ms(&req));
    log_access(req.status, http_elapsed_ms(&req), req.auth.user_id);
    log_set_request(NULL, NULL, NULL);
    json_object_put(req.json);
    free(req.path);
    free(req.body);
    free(req.headers);
    free(req.sent);
}

int server_health(http_req *req)
{
    http_add_header(req, "Cache-Control", "no-store");
    if (!db_ping()) {
        json_object *extra = json_object_new_object();
        if (extra)
            json_object_object_add(extra, "db", json_object_new_string("unavailable"));
        http_add_header(req, "Retry-After", "2");
        return problem_send_extra(req, 503, "unavailable", "The database is unavailable.", extra);
    }
    json_object *o = json_object_new_object();
    if (!o)
        return problem_internal(req, "health: out of memory");
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "db", json_object_new_string("ok"));
    return http_reply_json(req, 200, o);
}

static void server_count_retry(void)
{
    metrics_inc(METRIC_DB_RETRIES, 1);
}

int server_setup(const char *service)
{
    log_init(service, LOG_INFO);
    if (config_load() != 0) {
        log_error("cannot load the configuration ($SHOP_CONFIG)");
        return -1;
    }
    log_init(service, log_level_parse(config_get("LOG_LEVEL", "info")));
    if (sodium_init() < 0) {
        log_error("sodium_init failed");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (db_init() != 0)
        return -1;
    db_on_retry(server_count_retry);
    return 0;
}

int server_run(const char *service, const route *table, size_t n, int (*init)(void))
{
    if (server_setup(service) != 0)
        return 1;
    server_service = service;
    server_faults = config_int("ALLOW_FAULT_INJECTION", 0) == 1;
    snprintf(server_metrics_path, sizeof server_metrics_path, "/%s/metrics",
             strcmp(service, "auth") == 0 ? "auth" : strcmp(service, "product") == 0 ? "products" : "orders");
    metrics_init(service, n);
    revoke_reader_init(config_get("REVOKE_FILE", NULL));
    for (size_t i = 0; i < n; i++)
        metrics_name_route(i, table[i].method, table[i].pattern);
    const char *dir = config_get("JWT_PUBLIC_DIR", NULL);
    if (!dir || token_load_public_dir(dir) <= 0)
        log_error("no token verification keys loaded (JWT_PUBLIC_DIR=%s): every token will be refused",
                  dir ? dir : "unset");
    if (init && init() != 0) {
        log_error("service init failed");
        return 1;
    }
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    FCGX_Request f;
    if (FCGX_InitRequest(&f, 0, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return 1;
    }
    log_info("worker ready");
    while (FCGX_Accept_r(&f) >= 0) {
        server_handle(table, n, &f);
        FCGX_Finish_r(&f);
    }
    db_close();
    token_free_all();
    config_free();
    return 0;
}

static volatile sig_atomic_t server_sweep_stop;

static void server_sweep_on_signal(int sig)
{
    (void)sig;
    server_sweep_stop = 1;
}

int server_sweep(const char *service, int (*pass)(void), const char *key, long long interval,
                 bool once)
{
    int rc = 0;
    if (once) {
        rc = pass() < 0 ? 1 : 0;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = server_sweep_on_signal;
        if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
            log_error("%s sweep: sigaction failed", service);
            rc = 1;
        }
        interval = config_int(key, interval);
        if (interval < 1)
            interval = 1;
        log_info("sweep: every %llds", interval);
        while (!rc && !server_sweep_stop) {
            pass();
            for (long long s = 0; s < interval && !server_sweep_stop; s++)
                sleep(1);
        }
    }
    db_close();
    config_free();
    return rc;
}
