/* settle.h: product's settle consumer (settle.c). */
#ifndef SHOP_SETTLE_H
#define SHOP_SETTLE_H

#include "consume.h"

/* A consume_batch_fn: order.confirmed confirms the reservation,
 * order.cancelled releases it; one transaction for the whole batch, one
 * per event when that fails. */
void settle_handle_batch(const event *evs, int n, int *verdicts, void *ctx);

#endif
