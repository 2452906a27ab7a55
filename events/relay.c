/* relay.c: shop-relay <service>, the outbox relay.  Reads the service's
 * config ($SHOP_CONFIG: DB_*, AMQP_*), then forever: takes the next batch of
 * the service's outbox rows not yet published (lowest id first), publishes
 * each to shop.events as a CloudEvent (persistent, mandatory, routing key =
 * its type) with publisher confirms, and marks the rows published only once
 * the broker confirmed every one of them, in the transaction that locked
 * them.  At-least-once: a crash between the confirm and the commit
 * publishes the batch again, with the same event ids (consumers dedupe).
 *
 * Safe on every host at once: a relay publishes only while it holds the
 * named lock "shop_relay_<service>" on the writer (the lease: one publisher,
 * so events go out in id order; it passes to another host's relay when its
 * connection ends, also when the holder froze: the server closes a
 * connection idle for RELAY_LEASE_IDLE seconds), and its rows are locked
 * FOR UPDATE SKIP LOCKED besides.
 * The broker or the database gone: retried with backoff (the outbox keeps
 * growing meanwhile; shop_outbox_lag_seconds shows it).  SIGTERM/SIGINT:
 * finishes the batch in hand and exits 0. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "broker.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "server.h"

#define RELAY_BATCH_MAX 500
/* A tx result: the broker failed (reconnect), not the database. */
#define RELAY_BROKER_FAILED (STORE_GUARD_MIN - 1)

static volatile sig_atomic_t relay_stopping;

static void relay_on_signal(int sig)
{
    (void)sig;
    relay_stopping = 1;
}

static void relay_pause(int ms)
{
    for (int t = 0; t < ms && !relay_stopping; t += 100)
        usleep((useconds_t)(ms - t < 100 ? ms - t : 100) * 1000);
}

typedef struct relay {
    const char *service;
    char source[80];
    broker b;
    uint64_t next_tag;          /* delivery tag of the next publish (confirm mode) */
    int batch;
    int confirm_ms;
    outbox_row rows[RELAY_BATCH_MAX];
    int64_t ids[RELAY_BATCH_MAX];
    unsigned char acked[RELAY_BATCH_MAX];
    int unroutable;
} relay;

/* The CloudEvent of one row, malloc'd JSON text; NULL when out of memory. */
static char *relay_event(const relay *r, const outbox_row *o)
{
    json_object *ev = json_object_new_object();
    if (!ev)
        return NULL;
    char id[96];
    snprintf(id, sizeof id, "%s-%" PRId64, r->service, o->id);
    json_object *data = json_tokener_parse(o->payload);
    if (!data && strcmp(o->payload, "null") != 0) {
        log_error("relay: outbox row %" PRId64 ": payload is not JSON; sent as a string", o->id);
        data = json_object_new_string(o->payload);
    }
    json_object_object_add(ev, "specversion", json_object_new_string("1.0"));
    json_object_object_add(ev, "id", json_object_new_string(id));
    json_object_object_add(ev, "source", json_object_new_string(r->source));
    json_object_object_add(ev, "type", json_object_new_string(o->type));
    json_object_object_add(ev, "time", json_object_new_string(o->time));
    json_object_object_add(ev, "subject", json_object_new_string(o->subject));
    json_object_object_add(ev, "datacontenttype", json_object_new_string("application/json"));
    json_object_object_add(ev, "data", data);
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    char *out = text ? strdup(text) : NULL;
    json_object_put(ev);
    return out;
}

static int relay_publish(relay *r, const outbox_row *o)
{
    char *body = relay_event(r, o);
    if (!body) {
        log_error("relay: out of memory");
        return -1;
    }
    char id[96];
    snprintf(id, sizeof id, "%s-%" PRId64, r->service, o->id);
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
               AMQP_BASIC_APP_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/cloudevents+json");
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.message_id = amqp_cstring_bytes(id);
    p.type = amqp_cstring_bytes(o->type);
    p.timestamp = (uint64_t)time(NULL);
    p.app_id = amqp_cstring_bytes(r->source);
    if (o->request_id[0]) {     /* the request that made the change: consumers log it */
        p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p.correlation_id = amqp_cstring_bytes(o->request_id);
    }
    int rc = amqp_basic_publish(r->b.conn, BROKER_CHANNEL, amqp_cstring_bytes(BROKER_EXCHANGE),
                                amqp_cstring_bytes(o->type), 1, 0, &p, amqp_cstring_bytes(body));
    free(body);
    if (rc != AMQP_STATUS_OK) {
        log_warn("relay: publish to %s: %s", r->b.node, amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* Reads frames until the broker confirmed delivery tags first..first+n-1.
 * Returns 0 when all were acked, 1 when one was nacked (the batch goes
 * again), -1 when the connection failed or the wait timed out. */
static int relay_wait_confirms(relay *r, uint64_t first, int n)
{
    memset(r->acked, 0, (size_t)n);
    int left = n;
    long long start = config_now_ms();
    int nacked = 0;
    while (left > 0) {
        long long spent = config_now_ms() - start;
        if (spent >= r->confirm_ms) {
            log_warn("relay: %d of %d publishes unconfirmed by %s after %d ms", left, n,
                     r->b.node, r->confirm_ms);
            return -1;
        }
        amqp_frame_t f;
        int got = broker_wait_frame(&r->b, &f, (int)(r->confirm_ms - spent));
        if (got < 0)
            return -1;
        if (got == 0 || f.frame_type != AMQP_FRAME_METHOD)
            continue;
        uint64_t tag;
        int multiple;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
            nacked = 1;
            log_warn("relay: the broker nacked publish %" PRIu64, tag);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            /* Mandatory and unroutable: no queue is bound to the type.  The
             * message's content follows; its confirm comes after. */
            amqp_basic_return_t *ret = f.payload.method.decoded;
            log_warn("relay: event of type %.*s returned: no queue bound (%.*s)",
                     (int)ret->routing_key.len, (const char *)ret->routing_key.bytes,
                     (int)ret->reply_text.len, (const char *)ret->reply_text.bytes);
            amqp_message_t msg;
            amqp_rpc_reply_t rr = amqp_read_message(r->b.conn, f.channel, &msg, 0);
            if (rr.reply_type != AMQP_RESPONSE_NORMAL)
                return -1;
            amqp_destroy_message(&msg);
            r->unroutable++;
            continue;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            log_warn("relay: the broker closed the channel (method 0x%08x)",
                     f.payload.method.id);
            return -1;
        default:
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint64_t t = first + (uint64_t)i;
            if (!r->acked[i] && (t == tag || (multiple && t <= tag))) {
                r->acked[i] = 1;
                left--;
            }
        }
    }
    return nacked ? 1 : 0;
}

/* The batch transaction: lock, publish, confirm, mark.  Returns the rows
 * published, 0 when none were pending, RELAY_BROKER_FAILED, or a DB code. */
static int relay_batch_tx(void *arg)
{
    relay *r = arg;
    int n = outbox_claim(r->rows, r->batch);
    if (n <= 0)
        return n;
    uint64_t first = r->next_tag;
    int rc = 0;
    r->unroutable = 0;
    for (int i = 0; i < n; i++) {
        r->ids[i] = r->rows[i].id;
        if (relay_publish(r, &r->rows[i]) != 0) {
            rc = RELAY_BROKER_FAILED;
            break;
        }
        r->next_tag++;
    }
    outbox_rows_free(r->rows, n);
    if (rc == 0) {
        int c = relay_wait_confirms(r, first, n);
        if (c != 0)
            rc = RELAY_BROKER_FAILED;
    }
    /* The confirms were decoded into the connection's frame pool, which
     * rabbitmq-c recycles only when asked: without this it grows with
     * every batch for as long as the connection lives. */
    amqp_maybe_release_buffers(r->b.conn);
    if (rc != 0)
        return rc;
    if (outbox_mark_published(r->ids, n) != DB_OK)
        return DB_ERROR;
    return n;
}

/* Connects and puts the channel in confirm mode. */
static int relay_connect(relay *r)
{
    char who[120];
    snprintf(who, sizeof who, "shop-relay %s (pid %d)", r->service, (int)getpid());
    if (broker_open(&r->b, who) != 0)
        return -1;
    amqp_confirm_select(r->b.conn, BROKER_CHANNEL);
    if (broker_ok(&r->b, "confirm.select") != 0) {
        broker_close(&r->b);
        return -1;
    }
    r->next_tag = 1;
    return 0;
}

/* Waits ms for the broker (answering heartbeats, noticing a close).
 * Returns -1 when the connection is gone. */
static int relay_idle(relay *r, int ms)
{
    amqp_frame_t f;
    int got = broker_wait_frame(&r->b, &f, ms);
    if (got < 0)
        return -1;
    if (got == 1 && f.frame_type == AMQP_FRAME_METHOD &&
        (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        log_warn("relay: the broker closed the channel");
        return -1;
    }
    amqp_maybe_release_buffers(r->b.conn);     /* heartbeats and the like */
    return 0;
}

/* 1 when this process holds the lease (already, or now), 0 when another
 * does, DB_ERROR.  GET_LOCK nests, so it is only asked for when not held. */
static int relay_lease(const char *lock)
{
    db_res *res = db_query("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", "s", lock);
    if (!res)
        return DB_ERROR;
    int held = db_rows(res) > 0 && db_int(res, 0, 0) == 1;
    db_free(res);
    return held ? 1 : db_try_lock(lock, 0);
}

static int relay_run(relay *r)
{
    char lock[96];
    snprintf(lock, sizeof lock, "shop_relay_%s", r->service);
    int backoff = 250, leader = 0;
    long idle_ms = config_int("RELAY_POLL_MS", 200);
    if (idle_ms < 10 || idle_ms > 10000)
        idle_ms = 200;
    while (!relay_stopping) {
        if (!r->b.conn && relay_connect(r) != 0) {
            relay_pause(backoff);
            backoff = backoff < 5000 ? backoff * 2 : 10000;
            continue;
        }
        /* The lease, asked again every round: the lock lives with the DB
         * connection, which db.c remakes after a loss. */
        int got = relay_lease(lock);
        if (got != 1) {
            if (got < 0)
                log_warn("relay: database unavailable (lease)");
            if (leader)
                log_info("relay: lease %s lost", lock);
            leader = 0;
            if (relay_idle(r, got < 0 ? backoff : 1000) != 0)
                broker_close(&r->b);
            if (got < 0)
                backoff = backoff < 5000 ? backoff * 2 : 10000;
            continue;
        }
        if (!leader)
            log_info("relay: lease %s taken: publishing %s's outbox", lock, r->service);
        leader = 1;
        int n = db_tx(relay_batch_tx, r);
        if (n > 0) {
            metrics_inc(METRIC_EVENTS_PUBLISHED, (unsigned long long)n);
            if (r->unroutable)
                metrics_inc(METRIC_EVENTS_UNROUTABLE, (unsigned long long)r->unroutable);
            log_debug("relay: %d events published", n);
            backoff = 250;
            continue;
        }
        if (n == 0) {
            backoff = 250;
            if (relay_idle(r, (int)idle_ms) != 0)
                broker_close(&r->b);
            continue;
        }
        if (n == RELAY_BROKER_FAILED) {
            log_warn("relay: batch not confirmed: reconnecting (its rows stay pending)");
            broker_close(&r->b);
        } else {
            log_warn("relay: batch failed in the database (%d): retrying", n);
        }
        relay_pause(backoff);
        backoff = backoff < 5000 ? backoff * 2 : 10000;
    }
    if (leader)
        db_unlock(lock);
    broker_close(&r->b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 || !*argv[1] || strspn(argv[1], "abcdefghijklmnopqrstuvwxyz") != strlen(argv[1])) {
        fprintf(stderr, "usage: shop-relay <service>   (auth, order: reads $SHOP_CONFIG)\n");
        return 2;
    }
    static relay r;
    r.service = argv[1];
    snprintf(r.source, sizeof r.source, "/shop/%s", r.service);
    if (server_setup(r.service) != 0)
        return 1;
    metrics_init(r.service, 0);
    /* A relay that froze while holding the lease loses it (its connection,
     * and so its named lock, ends) after RELAY_LEASE_IDLE seconds: the
     * relays of the other hosts go on.  A live relay asks every round
     * (RELAY_POLL_MS), or after its broker backoff, at most 10 s. */
    long idle = config_int("RELAY_LEASE_IDLE", 15);
    db_set_idle_timeout((unsigned)(idle < 11 ? 11 : idle));
    r.batch = (int)config_int("RELAY_BATCH", 200);
    if (r.batch < 1 || r.batch > RELAY_BATCH_MAX)
        r.batch = 200;
    r.confirm_ms = (int)config_int("RELAY_CONFIRM_MS", 10000);
    if (r.confirm_ms < 100)
        r.confirm_ms = 10000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = relay_on_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        log_error("relay: sigaction failed");
        return 1;
    }
    log_info("relay: %s's outbox to %s (batches of %d)", r.service, BROKER_EXCHANGE, r.batch);
    int rc = relay_run(&r);
    log_info("relay: stopped");
    db_close();
    config_free();
    return rc;
}
