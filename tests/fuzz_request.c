/* fuzz_request.c: libFuzzer target for the request and JSON layer: the
 * strict parser, the field getters, the query-string and path decoders and
 * the route matcher, fed arbitrary bytes.  Built and run by `make fuzz`. */
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    json_object *o = json_parse_strict(s, size);
    if (o && json_object_is_type(o, json_type_object)) {
        static const char *const allowed[] = {"sku", "name", "price_cents", NULL};
        json_object *errs = json_object_new_array();
        int64_t n;
        const char *str;
        json_check_fields(o, allowed, errs);
        json_get_int(o, "price_cents", 0, 100000000000LL, true, &n, errs);
        json_get_str(o, "name", 1, 200, true, &str, errs);
        json_object_put(errs);
    }
    json_object_put(o);

    http_req req;
    memset(&req, 0, sizeof req);
    req.query = s;
    char buf[256], path[512];
    http_query(&req, "q", buf, sizeof buf);
    http_query(&req, "limit", buf, sizeof buf);
    if (http_decode_path(s, size, path, sizeof path) == 0) {
        int64_t id;
        route_match("/products/{id}/stock", path, &id);
        route_match("/orders/{id}", path, &id);
    }
    http_request_id_valid(s);
    json_utf8_len(s, size);
    free(s);
    return 0;
}
