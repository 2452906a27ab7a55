/* client.h: service-to-service HTTP calls (order -> product /internal/) over
 * libcurl.  Every call carries the service token and the current request id,
 * and has a bounded timeout, so a dead dependency becomes an error, not a hang. */
#ifndef SHOP_CLIENT_H
#define SHOP_CLIENT_H

#include <json-c/json.h>

typedef struct client_resp {
    int status;          /* HTTP status, 0 on transport failure or timeout */
    json_object *body;   /* parsed JSON body or NULL; caller puts it */
} client_resp;

/* Sends `body` (may be NULL; not consumed) to base URL + path.  Returns 0 when
 * an HTTP response arrived (any status), -1 on transport failure/timeout. */
int client_call(const char *method, const char *base, const char *path,
                json_object *body, client_resp *out);

void client_free(client_resp *r);

#endif
