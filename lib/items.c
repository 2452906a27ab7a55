/* items.c: see items.h.  json.h's getters name bare members ("quantity");
 * each line is checked into its own error list, then its errors are moved
 * into the caller's with the line's prefix. */
#include <stdbool.h>
#include <stdio.h>

#include "items.h"
#include "json.h"

/* Moves every {"field","message"} of line_errs into errs as
 * "<prefix>.<field>" ("<prefix>" for a field of ""). */
static void items_move_errors(json_object *line_errs, const char *prefix, json_object *errs)
{
    size_t n = json_object_array_length(line_errs);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(line_errs, i), *f, *m;
        const char *field = json_object_object_get_ex(e, "field", &f) ? json_object_get_string(f) : "";
        const char *msg = json_object_object_get_ex(e, "message", &m) ? json_object_get_string(m) : "invalid";
        char name[96];
        snprintf(name, sizeof name, "%s%s%s", prefix, field && *field ? "." : "", field ? field : "");
        json_add_error(errs, name, msg);
    }
}

void items_parse(json_object *obj, size_t max_lines, int64_t max_quantity,
                 items_line *lines, size_t *n, json_object *errs)
{
    static const char *const line_fields[] = {"product_id", "quantity", NULL};
    json_object *items = NULL;
    size_t before = json_object_array_length(errs), kept = 0;
    *n = 0;
    if (!json_object_object_get_ex(obj, "items", &items) || !items) {
        json_add_error(errs, "items", "is required");
        return;
    }
    if (!json_object_is_type(items, json_type_array)) {
        json_add_error(errs, "items", "must be an array");
        return;
    }
    size_t len = json_object_array_length(items);
    if (len < 1 || len > max_lines) {
        char msg[48];
        snprintf(msg, sizeof msg, "must have 1 to %zu lines", max_lines);
        json_add_error(errs, "items", msg);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        json_object *el = json_object_array_get_idx(items, i);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "items[%zu]", i);
        if (!json_object_is_type(el, json_type_object)) {
            json_add_error(errs, prefix, "must be an object");
            continue;
        }
        json_object *line_errs = json_object_new_array();
        if (!line_errs) {
            json_add_error(errs, prefix, "could not be checked");
            continue;
        }
        int64_t pid = 0, qty = 0;
        json_check_fields(el, line_fields, line_errs);
        int okp = json_get_int(el, "product_id", 1, INT64_MAX, true, &pid, line_errs);
        int okq = json_get_int(el, "quantity", 1, max_quantity, true, &qty, line_errs);
        bool dup = false;
        for (size_t j = 0; okp == JSON_OK && j < kept; j++)
            dup = dup || lines[j].product_id == pid;
        if (dup)
            json_add_error(line_errs, "product_id", "duplicate product_id: one line per product");
        items_move_errors(line_errs, prefix, errs);
        json_object_put(line_errs);
        if (okp == JSON_OK && !dup) {
            lines[kept].product_id = pid;
            lines[kept].quantity = okq == JSON_OK ? qty : 0;
            kept++;
        }
    }
    if (json_object_array_length(errs) == before)
        *n = kept;
}

void items_mixed_currency(json_object *errs)
{
    json_add_error(errs, "items", "all products of an order must have the same currency");
}
