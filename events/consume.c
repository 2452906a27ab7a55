/* consume.c: see consume.h. */
#include "consume.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "metrics.h"

static volatile sig_atomic_t consume_stopping;

void consume_stop(void)
{
    consume_stopping = 1;
}

static void consume_on_signal(int sig)
{
    (void)sig;
    consume_stopping = 1;
}

/* Sleeps up to ms, waking early when asked to stop. */
static void consume_pause(int ms)
{
    for (int t = 0; t < ms && !consume_stopping; t += 100)
        usleep(100 * 1000);
}

int consume_dedupe(const char *id)
{
    int64_t n = db_exec("INSERT INTO processed_events (id, processed_at)"
                        " VALUES (?, UTC_TIMESTAMP(3))", "s", id);
    if (n == DB_CONFLICT)
        return 0;
    return n < 0 ? DB_ERROR : 1;
}

static const char *str_member(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int consume_parse(const char *body, size_t len, event *ev, json_object **root, char *why,
                  size_t n)
{
    memset(ev, 0, sizeof *ev);
    *root = json_parse_strict(body, len);
    if (!*root || !json_object_is_type(*root, json_type_object)) {
        snprintf(why, n, "not a JSON object");
        goto bad;
    }
    const char *spec = str_member(*root, "specversion");
    if (!spec || strcmp(spec, "1.0") != 0) {
        snprintf(why, n, "specversion is not \"1.0\"");
        goto bad;
    }
    ev->id = str_member(*root, "id");
    ev->source = str_member(*root, "source");
    ev->type = str_member(*root, "type");
    if (!ev->id || !*ev->id || !ev->source || !*ev->source || !ev->type || !*ev->type) {
        snprintf(why, n, "id, source or type missing or empty");
        goto bad;
    }
    if (strlen(ev->id) > 128) {
        snprintf(why, n, "id longer than 128 characters");
        goto bad;
    }
    ev->time = str_member(*root, "time");
    if (!ev->time)
        ev->time = "";
    ev->subject = str_member(*root, "subject");
    if (!ev->subject)
        ev->subject = "";
    json_object *data;
    if (json_object_object_get_ex(*root, "data", &data))
        ev->data = data;
    return 0;
bad:
    if (*root)
        json_object_put(*root);
    *root = NULL;
    memset(ev, 0, sizeof *ev);
    return -1;
}

/* x-delivery-count from the message headers (quorum queues set it on a
 * redelivery after a return), 0 when absent. */
static long delivery_count(const amqp_basic_properties_t *p)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != 16 || memcmp(e->key.bytes, "x-delivery-count", 16) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8: return e->value.value.i8;
        case AMQP_FIELD_KIND_U8: return e->value.value.u8;
        case AMQP_FIELD_KIND_I16: return e->value.value.i16;
        case AMQP_FIELD_KIND_U16: return e->value.value.u16;
        case AMQP_FIELD_KIND_I32: return e->value.value.i32;
        case AMQP_FIELD_KIND_U32: return (long)e->value.value.u32;
        case AMQP_FIELD_KIND_I64: return (long)e->value.value.i64;
        case AMQP_FIELD_KIND_U64: return (long)e->value.value.u64;
        default: return 0;
        }
    }
    return 0;
}

/* Retention of the dedupe table, at most once per RETENTION_INTERVAL
 * (default 60 s): ids processed more than PROCESSED_EVENTS_RETENTION
 * (default 7 days) ago go, in batches.  Longer than any redelivery; a
 * dead-lettered message replayed later than that is applied again, which
 * an idempotent effect (the settle consumer's status transitions) absorbs. */
static void consume_retention(void)
{
    static struct timespec next;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (next.tv_sec != 0 && now.tv_sec < next.tv_sec)
        return;
    long long every = config_int("RETENTION_INTERVAL", 60);
    next.tv_sec = now.tv_sec + (every < 1 ? 1 : every);
    int64_t n = db_purge("DELETE FROM processed_events"
                         " WHERE processed_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                         " ORDER BY processed_at LIMIT ?",
                         config_int("PROCESSED_EVENTS_RETENTION", 604800), 500, 20);
    if (n > 0)
        log_info("consume: deleted %lld processed event ids", (long long)n);
    else if (n < 0)
        log_warn("consume: retention of processed_events failed (%lld)", (long long)n);
}

/* Handles one delivery; returns 0, or -1 when the connection failed. */
static int consume_one(broker *b, const char *queue, amqp_envelope_t *env, consume_fn handle,
                       void *ctx)
{
    event ev;
    json_object *root = NULL;
    char why[96];
    const amqp_bytes_t *body = &env->message.body;
    int verdict;
    long count = delivery_count(&env->message.properties);
    if (consume_parse(body->bytes, body->len, &ev, &root, why, sizeof why) != 0) {
        log_error("consume %s: delivery %" PRIu64 " is no CloudEvent (%s): dead-lettered",
                  queue, (uint64_t)env->delivery_tag, why);
        verdict = CONSUME_DEAD;
    } else {
        ev.redelivered = env->redelivered != 0;
        ev.delivery_count = count;
        if (ev.redelivered)
            metrics_inc(METRIC_EVENTS_REDELIVERED, 1);
        verdict = handle(&ev, ctx);
        if (verdict == CONSUME_RETRY)
            log_warn("consume %s: event %s (%s) failed, delivery %ld: given back", queue, ev.id,
                     ev.type, count + 1);
        else if (verdict == CONSUME_DEAD)
            log_error("consume %s: event %s (%s) refused: dead-lettered", queue, ev.id, ev.type);
    }
    int rc;
    if (verdict == CONSUME_OK) {
        metrics_inc(METRIC_EVENTS_PROCESSED, 1);
        rc = amqp_basic_ack(b->conn, BROKER_CHANNEL, env->delivery_tag, 0);
    } else if (verdict == CONSUME_RETRY) {
        metrics_inc(METRIC_EVENTS_FAILED, 1);
        /* The broker dead-letters it once it was returned more than the
         * limit: this return is the one. */
        if (count + 1 > BROKER_DELIVERY_LIMIT) {
            metrics_inc(METRIC_EVENTS_DEAD_LETTERED, 1);
            log_error("consume %s: event %s failed %ld times: dead-lettered", queue, ev.id,
                      count + 1);
        }
        int backoff = 1000 << (count < 3 ? count : 3);
        consume_pause(backoff);
        rc = amqp_basic_nack(b->conn, BROKER_CHANNEL, env->delivery_tag, 0, 1);
    } else {
        metrics_inc(METRIC_EVENTS_DEAD_LETTERED, 1);
        rc = amqp_basic_reject(b->conn, BROKER_CHANNEL, env->delivery_tag, 0);
    }
    if (root)
        json_object_put(root);
    if (rc != AMQP_STATUS_OK) {
        log_warn("consume %s: ack/nack failed: %s", queue, amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* One connection's life: declare, consume until the connection fails or
 * a stop is asked.  Returns 1 when it ran (consumed), 0 when it never got
 * that far. */
static int consume_session(const char *queue, const char *const *types, consume_fn handle,
                           void *ctx)
{
    broker b;
    char who[160];
    snprintf(who, sizeof who, "shop-consume %s (pid %d)", queue, (int)getpid());
    if (broker_open(&b, who) != 0)
        return 0;
    int ran = 0;
    long prefetch = config_int("CONSUME_PREFETCH", 16);
    if (prefetch < 1 || prefetch > 1000)
        prefetch = 16;
    if (broker_declare_queue(&b, queue, types) != 0)
        goto out;
    amqp_basic_qos(b.conn, BROKER_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (broker_ok(&b, "basic.qos") != 0)
        goto out;
    amqp_basic_consume(b.conn, BROKER_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0,
                       0, amqp_empty_table);
    if (broker_ok(&b, "basic.consume") != 0)
        goto out;
    ran = 1;
    log_info("consume %s: consuming on %s", queue, b.node);
    while (!consume_stopping) {
        amqp_envelope_t env;
        struct timeval tv = {.tv_sec = 1};
        amqp_maybe_release_buffers(b.conn);
        amqp_rpc_reply_t r = amqp_consume_message(b.conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int rc = consume_one(&b, queue, &env, handle, ctx);
            amqp_destroy_envelope(&env);
            if (rc != 0)
                break;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            consume_retention();
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* A frame other than a delivery: a close, or the broker
             * cancelling the consumer (its queue deleted). */
            amqp_frame_t f;
            if (broker_wait_frame(&b, &f, 1000) <= 0)
                break;
            if (f.frame_type != AMQP_FRAME_METHOD)
                continue;
            if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
                log_warn("consume %s: the broker closed the channel (method 0x%08x)", queue,
                         f.payload.method.id);
                if (f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
                    amqp_send_method(b.conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
                                     &(amqp_connection_close_ok_t){0});
                break;
            }
            continue;
        }
        log_warn("consume %s: connection to %s lost (%s)", queue, b.node,
                 r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                     ? amqp_error_string2(r.library_error) : "server exception");
        break;
    }
out:
    broker_close(&b);
    return ran;
}

int consume_run(const char *queue, const char *const *types, consume_fn handle, void *ctx)
{
    if (!queue || !*queue || !types || !types[0] || !handle) {
        log_error("consume_run: a queue, at least one type and a handler are required");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = consume_on_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        log_error("consume %s: sigaction failed", queue);
        return 1;
    }
    int backoff = 500;
    while (!consume_stopping) {
        if (consume_session(queue, types, handle, ctx))
            backoff = 500;
        if (consume_stopping)
            break;
        consume_pause(backoff);
        backoff = backoff < 8000 ? backoff * 2 : 10000;
    }
    log_info("consume %s: stopped", queue);
    return 0;
}
