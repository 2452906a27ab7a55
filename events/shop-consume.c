/* shop-consume.c: `shop-consume <name> [queue]`, the event consumers, one
 * per process (scripts/stack runs them per host; docs/EVENTS.md lists
 * them).  Each runs with its service's config ($SHOP_CONFIG: DB_*,
 * AMQP_*) and metrics file, consuming its own quorum queue (named after
 * the consumer unless `queue` is given) through consume_run(), or
 * consume_run_batch() for one with a batch handler (settle: batches of up to
 * SETTLE_BATCH events, default 64, gathered for up to SETTLE_BATCH_WAIT_MS,
 * default 200; notify: NOTIFY_BATCH, default 16, NOTIFY_BATCH_WAIT_MS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "consume.h"
#include "db.h"
#include "metrics.h"
#include "notify.h"
#include "replay.h"
#include "revocation.h"
#include "server.h"
#include "settle.h"

typedef struct consumer {
    const char *name;               /* the command-line name, the default queue */
    const char *service;            /* whose config, log name and metrics */
    const char *const *types;       /* routing keys bound to the queue */
    consume_fn handle;              /* one event at a time, or */
    consume_batch_fn handle_batch;  /* a batch at a time */
    int (*init)(void);              /* after server_setup(), or NULL */
    const char *batch_key;          /* config: the batch's size (... _WAIT_MS: its wait) */
    int batch_max;                  /* its default */
} consumer;

static const char *const settle_types[] = {"order.confirmed", "order.cancelled", NULL};
static const char *const user_types[] = {"user.role_changed", "user.password_changed",
                                         "user.tokens_revoked", NULL};

/* revoke runs once per host, each on its own queue (revoke.<host>, the
 * queue argument): every host must see every event. */
static const consumer consumers[] = {
    {"settle", "product", settle_types, NULL, settle_handle_batch, NULL, "SETTLE_BATCH", 64},
    {"revoke", "revoke", user_types, revocation_handle, NULL, revocation_init, NULL, 0},
    {"notify", "notify", settle_types, NULL, notify_handle_batch, notify_init,
     "NOTIFY_BATCH", 16},
};
#define N_CONSUMERS (sizeof consumers / sizeof consumers[0])

/* How long a batch consumer gathers events after the first (ms).  Measured
 * under order load (bench/RESULTS.md): 20 ms gave batches of one or two
 * events, 200 ms a quarter more orders per second. */
#define BATCH_WAIT_MS 200

static int usage(void)
{
    fprintf(stderr, "usage: shop-consume <name> [queue]   (names:");
    for (size_t i = 0; i < N_CONSUMERS; i++)
        fprintf(stderr, " %s", consumers[i].name);
    fprintf(stderr, "; reads $SHOP_CONFIG)\n"
                    "       shop-consume replay <queue>.dead [max]\n");
    return 2;
}

/* shop-consume replay <queue>.dead [max]: see replay.h. */
static int replay_main(int argc, char **argv)
{
    char *end = NULL;
    long max = argc == 4 ? strtol(argv[3], &end, 10) : -1;
    if (argc < 3 || argc > 4 || (argc == 4 && (!*argv[3] || *end || max < 1))) {
        fprintf(stderr, "usage: shop-consume replay <queue>.dead [max]   (reads $SHOP_CONFIG: AMQP_*)\n");
        return 2;
    }
    if (server_setup("replay") != 0)
        return 1;
    int rc = replay_run(argv[2], max);
    config_free();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return replay_main(argc, argv);
    if (argc < 2 || argc > 3)
        return usage();
    const consumer *c = NULL;
    for (size_t i = 0; i < N_CONSUMERS; i++)
        if (strcmp(argv[1], consumers[i].name) == 0)
            c = &consumers[i];
    if (!c)
        return usage();
    const char *queue = argc == 3 ? argv[2] : c->name;
    if (!*queue || strlen(queue) > 200)
        return usage();
    if (server_setup(c->service) != 0)
        return 1;
    metrics_init(c->service, 0);
    if (c->init && c->init() != 0)
        return 1;
    int rc;
    /* The wait, default BATCH_WAIT_MS: an event that waits for company
     * costs nothing (settlement and email are not on a request's path),
     * while a batch of one is a Galera commit per event. */
    if (c->handle_batch) {
        char wait_key[64];
        snprintf(wait_key, sizeof wait_key, "%s_WAIT_MS", c->batch_key);
        long max = config_int(c->batch_key, c->batch_max), wait = config_int(wait_key, BATCH_WAIT_MS);
        rc = consume_run_batch(queue, c->types, c->handle_batch, NULL,
                               max < 1 || max > CONSUME_BATCH_MAX ? c->batch_max : (int)max,
                               wait < 0 || wait > 1000 ? BATCH_WAIT_MS : (int)wait);
    } else {
        rc = consume_run(queue, c->types, c->handle, NULL);
    }
    db_close();
    config_free();
    return rc;
}
