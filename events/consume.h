/* consume.h: the consumer framework, a small library the consumer programs
 * (build/shop-consume) link.  STABLE API: consumers of other branches build
 * on it; change it only compatibly.
 *
 * consume_run() connects to the broker (events/broker.h), declares the
 * consumer's quorum queue, its dead-letter queue <queue>.dead and the
 * bindings of its event types on shop.events, then takes deliveries with a
 * prefetch of CONSUME_PREFETCH (config, default 16) and manual acks:
 *   - the body is parsed as a CloudEvent (docs/EVENTS.md); one that is not
 *     valid JSON or lacks specversion 1.0, id, source or type is rejected
 *     at once to the dead-letter queue, the handler never sees it;
 *   - handle() returns CONSUME_OK: acked; CONSUME_RETRY (a transient
 *     failure: the database is down...): after a pause that grows with the
 *     message's delivery count (config CONSUME_RETRY_MS, default 1 s, then
 *     2 s, 4 s, at most 8 s) it is given back (nack, requeue); the broker counts the returns and
 *     dead-letters it after BROKER_DELIVERY_LIMIT; CONSUME_DEAD: rejected at
 *     once to the dead-letter queue (a message that can never succeed).
 * A lost connection (a broker node down, the cluster down) is retried with
 * backoff, trying the other nodes; deliveries not acked then come again
 * (redelivered), so handlers must be idempotent: consume_dedupe().
 * Counters in the process's metrics file (lib/metrics.h): processed,
 * duplicate, redelivered, failed, dead-lettered.  consume_run_batch() below
 * is the same with handlers that take a batch of events at once.  While idle, it deletes
 * processed_events rows older than PROCESSED_EVENTS_RETENTION (7 days). */
#ifndef SHOP_CONSUME_H
#define SHOP_CONSUME_H

#include <stdbool.h>
#include <json-c/json.h>

/* One delivered CloudEvent.  The strings and data live until handle()
 * returns. */
typedef struct event {
    const char *id;          /* unique, stable across re-publishes: "order-42" */
    const char *source;      /* "/shop/order" */
    const char *type;        /* "order.confirmed" (the routing key) */
    const char *time;        /* RFC 3339, "" when absent */
    const char *subject;     /* the entity's id as text, "" when absent */
    json_object *data;       /* the "data" member, NULL when absent */
    bool redelivered;        /* the broker delivered it before */
    long delivery_count;     /* returns so far (x-delivery-count), 0 at first */
    char request_id[129];    /* the X-Request-ID of the change (correlation-id), or "" */
} event;

/* Makes ev's request id (none: NULL) the one of the log lines that follow,
 * as a request's is in a service (lib/log.h): a consumer calls it before
 * it logs about one event of a batch.  consume.c does it around a handler
 * of one event, and clears it after every delivery or batch. */
void consume_log_event(const event *ev);

enum {
    CONSUME_OK = 0,          /* done (or already done): ack */
    CONSUME_RETRY = 1,       /* transient failure: give it back, later */
    CONSUME_DEAD = 2,        /* never going to work: dead-letter it now */
};

typedef int (*consume_fn)(const event *ev, void *ctx);

/* Runs until SIGTERM or SIGINT (handlers installed here) or consume_stop():
 * consumes `queue`, bound to each routing key of the NULL-terminated
 * `types`, calling handle(ev, ctx) once per delivery.  The caller has run
 * server_setup() (config, log, DB).  Returns 0 after a clean stop, 1 when
 * the arguments are unusable. */
int consume_run(const char *queue, const char *const *types, consume_fn handle, void *ctx);

/* Batch mode, for a consumer whose effect costs one database commit per
 * call (the settle consumer): handle_batch(evs, n, verdicts, ctx) gets up to
 * max_batch CloudEvents at once, in delivery order, and sets verdicts[i] to
 * CONSUME_OK, CONSUME_RETRY or CONSUME_DEAD for each (preset to
 * CONSUME_RETRY: one left unset is given back).  A batch is what arrived
 * within max_wait_ms of its first delivery, or max_batch deliveries,
 * whichever comes first (the prefetch is raised to at least max_batch).
 * Deliveries that are no CloudEvent are dead-lettered and left out.  After
 * the call: the OK ones are acked (one ack with `multiple` when they lead
 * the batch), the DEAD ones rejected, the RETRY ones given back after one
 * pause (the longest their delivery counts ask for).  Counters as for
 * consume_run(), per event.  max_batch 1..CONSUME_BATCH_MAX, max_wait_ms
 * 0..1000.  Same return values as consume_run(). */
#define CONSUME_BATCH_MAX 256
typedef void (*consume_batch_fn)(const event *evs, int n, int *verdicts, void *ctx);
int consume_run_batch(const char *queue, const char *const *types, consume_batch_fn handle_batch,
                      void *ctx, int max_batch, int max_wait_ms);

/* Asks consume_run() to return after the delivery in hand (signal-safe). */
void consume_stop(void);

/* The dedupe helper: inside the handler's own transaction (db_tx), records
 * event ids[0..n) (distinct: the caller drops an id repeated in its batch)
 * in the service's processed_events table (id VARCHAR(128) PK, processed_at
 * DATETIME(3)), all in one statement.  DB_OK when every one was new (go on
 * with the effects: they commit together); DB_CONFLICT when one had been
 * processed before (roll back; for n = 1 that one is a duplicate, else take
 * the events one at a time to tell which); DB_ERROR otherwise. */
int consume_dedupe(const char *const *ids, int n);

/* A batch handler's transaction: apply(item) for each of the n items of
 * `items` (each `size` bytes), in order, inside ONE db_tx(), stopping at
 * the first that does not return DB_OK (db_tx then rolls back and reruns
 * the whole, as for any transaction).  Returns db_tx()'s result. */
int consume_in_one_tx(void *items, int n, size_t size, int (*apply)(void *item));

/* Parses a CloudEvent from body[len] into *ev (pointing into *root, which
 * the caller frees with json_object_put).  0, or -1 when it is not one (a
 * reason in why[n]).  Exposed for the tests. */
int consume_parse(const char *body, size_t len, event *ev, json_object **root, char *why,
                  size_t n);

#endif
