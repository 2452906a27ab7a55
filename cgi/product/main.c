/* main.c: the product service's route table and FastCGI entry point.  Every
 * path the service answers is listed here, with who may call it; the walk
 * (lib/route.c) answers 404/405/401/403 and body errors before a handler runs.
 * Writes to a product are ROUTE_USER, not ROUTE_SELLER, so that a customer
 * gets the same 404-for-invisible / 403-for-visible answers as anyone else. */
#include <stddef.h>

#include "handlers.h"
#include "route.h"
#include "server.h"

static const route product_routes[] = {
    {"GET", "/products/health", ROUTE_PUBLIC, false, server_health},
    {"GET", "/products", ROUTE_PUBLIC, false, product_list},
    {"POST", "/products", ROUTE_SELLER, true, product_create},
    {"GET", "/products/{id}", ROUTE_PUBLIC, false, product_get},
    {"PUT", "/products/{id}", ROUTE_USER, true, product_put},
    {"PATCH", "/products/{id}", ROUTE_USER, true, product_patch},
    {"DELETE", "/products/{id}", ROUTE_USER, false, product_delete},
    {"POST", "/products/{id}/stock", ROUTE_USER, true, product_stock},
    {"POST", "/internal/reservations", ROUTE_SERVICE, true, product_reserve},
    {"GET", "/internal/reservations/expired", ROUTE_SERVICE, false, product_reservations_expired},
    {"POST", "/internal/reservations/confirm", ROUTE_SERVICE, true, product_reservations_confirm},
    {"GET", "/internal/reservations/{id}", ROUTE_SERVICE, false, product_reservation_get},
    {"POST", "/internal/reservations/{id}/release", ROUTE_SERVICE, false,
     product_reservation_release},
};

int main(void)
{
    return server_run("product", product_routes,
                      sizeof product_routes / sizeof product_routes[0], NULL);
}
