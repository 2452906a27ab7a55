/* log.h: JSON-lines logging to stderr (lighttpd collects it per host).  Every
 * line carries ts, level, service and the id of the request being served, so
 * one request can be followed across services with grep. */
#ifndef SHOP_LOG_H
#define SHOP_LOG_H

#include "http.h"

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_init(const char *service, log_level min);

/* The request being served; NULL between requests.  Set by server.c. */
void log_set_request(const http_req *req);

/* Id of the request being served, "" between requests (for outgoing calls). */
const char *log_current_request_id(void);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* The access line: method, path, status, duration, user. */
void log_request(const http_req *req);

log_level log_level_parse(const char *s);

#endif
