/* server.h: the FastCGI accept loop shared by the three services: one request
 * at a time per worker process, request id taken from X-Request-ID (set by the
 * edge) or made here, route dispatch, the access log line. */
#ifndef SHOP_SERVER_H
#define SHOP_SERVER_H

#include "route.h"

/* Loads config, logging, DB, token keys, then serves until the socket
 * closes.  `init` (may be NULL) runs once after the common setup.  Returns
 * the process exit code. */
int server_run(const char *service, const route *table, size_t n, int (*init)(void));

#endif
