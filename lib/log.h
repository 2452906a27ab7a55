/* log.h: JSON-lines logging to stderr (lighttpd collects it per host).  Every
 * line carries ts, level, service and the id of the request being served, so
 * one request can be followed across services with grep. */
#ifndef SHOP_LOG_H
#define SHOP_LOG_H

#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_init(const char *service, log_level min);

/* The request being served: its id, method and path go on every line until
 * log_set_request(NULL, NULL, NULL) (between requests).  The strings are not
 * copied: they must live until then.  Set by server.c. */
void log_set_request(const char *request_id, const char *method, const char *path);

/* Id of the request being served, "" between requests (for outgoing calls). */
const char *log_current_request_id(void);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* The access line of the current request: its status, duration and user
 * (0: anonymous); an error line for a 5xx. */
void log_access(int status, double duration_ms, int64_t user_id);

log_level log_level_parse(const char *s);

#endif
