/* settle.h: product's settle consumer (settle.c). */
#ifndef SHOP_SETTLE_H
#define SHOP_SETTLE_H

#include "consume.h"

/* order.confirmed: confirm the reservation; order.cancelled: release it. */
int settle_handle(const event *ev, void *ctx);

/* The same for a batch (consume_run_batch): one transaction for all of
 * them, one per event when that fails (a consume_batch_fn). */
void settle_handle_batch(const event *evs, int n, int *verdicts, void *ctx);

#endif
