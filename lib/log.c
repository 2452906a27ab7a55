/* log.c: JSON-lines logging to stderr.  One line per event, built with json-c
 * so any message text is escaped correctly; the current request (set by the
 * server loop) supplies request_id, method and path to every line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "log.h"

static const char *log_service = "shop";
static log_level log_min = LOG_INFO;
static const char *log_req_id, *log_req_method, *log_req_path;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, log_level min)
{
    log_service = service;
    log_min = min;
}

void log_set_request(const char *request_id, const char *method, const char *path)
{
    log_req_id = request_id;
    log_req_method = method;
    log_req_path = path;
}

const char *log_current_request_id(void)
{
    return log_req_id ? log_req_id : "";
}

log_level log_level_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (log_level)i;
    return LOG_INFO;
}

/* Starts a line object with the fields every line has. */
static json_object *log_line(log_level level)
{
    struct timeval tv;
    char ts[64], when[32];
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof ts, "%s.%03dZ", when, (int)(tv.tv_usec / 1000) % 1000);

    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level_names[level]));
    json_object_object_add(o, "service", json_object_new_string(log_service));
    json_object_object_add(o, "pid", json_object_new_int(getpid()));
    if (log_req_id) {
        json_object_object_add(o, "request_id", json_object_new_string(log_req_id));
        json_object_object_add(o, "method", json_object_new_string(log_req_method ? log_req_method : ""));
        json_object_object_add(o, "path", json_object_new_string(log_req_path ? log_req_path : ""));
    }
    return o;
}

static void log_emit(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    /* One write per line so lines from concurrent workers never interleave. */
    size_t n = strlen(s);
    char buf[8192];
    if (n + 1 < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, n + 1);
        (void)w;
    } else {
        fprintf(stderr, "%s\n", s);
    }
    json_object_put(o);
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = log_line(level);
    if (!o)
        return;
    json_object_object_add(o, "msg", json_object_new_string(msg));
    log_emit(o);
}

void log_access(int status, double duration_ms, int64_t user_id)
{
    if (LOG_INFO < log_min)
        return;
    json_object *o = log_line(status >= 500 ? LOG_ERROR : LOG_INFO);
    if (!o)
        return;
    json_object_object_add(o, "msg", json_object_new_string("request"));
    json_object_object_add(o, "status", json_object_new_int(status));
    json_object_object_add(o, "duration_ms", json_object_new_double(duration_ms));
    if (user_id)
        json_object_object_add(o, "user_id", json_object_new_int64(user_id));
    log_emit(o);
}
