/* settle.h: product's settle consumer (settle.c). */
#ifndef SHOP_SETTLE_H
#define SHOP_SETTLE_H

#include "consume.h"

/* order.confirmed: confirm the reservation; order.cancelled: release it. */
int settle_handle(const event *ev, void *ctx);

#endif
