/* items.h: the items[] array of {product_id, quantity} lines that placing an
 * order (POST /orders) and reserving its stock (product's POST
 * /internal/reservations) both take.  One validator, so both answer the same
 * 422 details, each named by its line: "items[2].quantity" (0-based). */
#ifndef SHOP_ITEMS_H
#define SHOP_ITEMS_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

typedef struct items_line {
    int64_t product_id;
    int64_t quantity;
} items_line;

/* Validates member "items" of obj: an array of 1..max_lines objects, each
 * exactly {product_id >= 1, quantity 1..max_quantity}, product ids distinct.
 * Appends one {"field","message"} per bad field to errs (json.h); other
 * members of obj are the caller's to check.  When the items hold no error,
 * fills lines[0..*n) in request order (lines has room for max_lines); else
 * *n is 0. */
void items_parse(json_object *obj, size_t max_lines, int64_t max_quantity,
                 items_line *lines, size_t *n, json_object *errs);

/* Appends the error of lines in more than one currency (field "items"):
 * product refuses such a reservation, order answers it to the client. */
void items_mixed_currency(json_object *errs);

#endif
