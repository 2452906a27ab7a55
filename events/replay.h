/* replay.h: `shop-consume replay <queue>.dead [max]`, the operator's way to
 * give dead-lettered messages another chance once their cause is fixed
 * (docs/OPERATIONS.md, "Replaying dead letters").  Each message of the
 * dead-letter queue is published again, unchanged but for its headers
 * (x-death goes, so the delivery limit counts afresh), straight to the
 * consumer's own queue <queue> through the default exchange (other
 * consumers of the event are not bothered), with a publisher confirm, and
 * only then removed from the dead-letter queue: a crash in between leaves
 * it in both, and the consumer's dedupe by event id makes that harmless.
 * At most `max` messages (default: all that are there when it starts). */
#ifndef SHOP_REPLAY_H
#define SHOP_REPLAY_H

/* Returns 0 when every message taken was replayed, 1 otherwise (logged). */
int replay_run(const char *dead_queue, long max);

#endif
