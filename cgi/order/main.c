/* main.c: the order service's entry point and route table.  With no
 * arguments it is a FastCGI worker (lighttpd spawns it); --sweep runs the
 * repair sweep forever and --sweep-once runs one pass (sweep.c). */
#include <stdio.h>
#include <string.h>

#include "order.h"
#include "outbox.h"
#include "route.h"
#include "server.h"

static const route order_routes[] = {
    { "POST", "/orders",              ROUTE_USER,   true,  order_create },
    { "GET",  "/orders",              ROUTE_USER,   false, order_list },
    { "GET",  "/orders/health",       ROUTE_PUBLIC, false, server_health },
    { "GET",  "/orders/{id}",         ROUTE_USER,   false, order_get },
    { "POST", "/orders/{id}/cancel",  ROUTE_USER,   false, order_cancel },
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--sweep") == 0)
        return order_sweep_main(false);
    if (argc == 2 && strcmp(argv[1], "--sweep-once") == 0)
        return order_sweep_main(true);
    if (argc > 1) {
        fprintf(stderr, "usage: order.fcgi [--sweep | --sweep-once]\n");
        return 2;
    }
    /* /orders/metrics adds the outbox lag (lib/outbox.h). */
    server_set_metrics_extra(outbox_metrics);
    return server_run("order", order_routes, sizeof order_routes / sizeof order_routes[0], NULL);
}
