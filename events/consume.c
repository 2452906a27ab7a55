/* consume.c: see consume.h. */
#include "consume.h"

#include <ctype.h>
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

typedef struct consume_tx_batch {
    char *items;
    int n;
    size_t size;
    int (*apply)(void *item);
} consume_tx_batch;

static int consume_tx_all(void *arg)
{
    consume_tx_batch *b = arg;
    for (int i = 0; i < b->n; i++) {
        int rc = b->apply(b->items + (size_t)i * b->size);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

int consume_in_one_tx(void *items, int n, size_t size, int (*apply)(void *item))
{
    consume_tx_batch b = {items, n, size, apply};
    return db_tx(consume_tx_all, &b);
}

static bool dedupe_used;     /* this consumer records ids in processed_events */

/* The ids go in as one JSON array, unpacked by JSON_TABLE: one fixed
 * statement whatever the batch's size.  The unpacked column is wider than
 * processed_events.id and of any character set, so an id the table cannot
 * hold fails the INSERT (strict mode) rather than going in cut or mangled. */
int consume_dedupe(const char *const *ids, int n)
{
    dedupe_used = true;
    if (n <= 0)
        return DB_OK;
    json_object *list = json_object_new_array_ext(n);
    for (int i = 0; list && i < n; i++) {
        json_object *s = json_object_new_string(ids[i]);
        if (!s || json_object_array_add(list, s) != 0) {
            json_object_put(s);
            json_object_put(list);
            list = NULL;
        }
    }
    const char *text = list ? json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN) : NULL;
    if (!text) {
        log_error("consume: out of memory for %d event ids", n);
        json_object_put(list);
        return DB_ERROR;
    }
    int64_t rc = db_exec("INSERT INTO processed_events (id, processed_at)"
                         " SELECT id, UTC_TIMESTAMP(3) FROM JSON_TABLE(?, '$[*]' COLUMNS"
                         " (id VARCHAR(1024) CHARACTER SET utf8mb4 PATH '$' ERROR ON EMPTY)) AS j",
                         "s", text);
    json_object_put(list);
    if (rc < 0)
        return rc == DB_CONFLICT ? DB_CONFLICT : DB_ERROR;
    return rc == n ? DB_OK : DB_ERROR;
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
    *root = json_parse_strict(body, len, NULL);
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

/* The correlation-id the relay sets (the request id of the change, 1-128
 * characters of [A-Za-z0-9._-] as the edge makes them) into out[129], else
 * "": anything else is not ours and is not logged. */
static void request_id(const amqp_basic_properties_t *p, char out[129])
{
    out[0] = '\0';
    if (!(p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) || p->correlation_id.len == 0 ||
        p->correlation_id.len > 128)
        return;
    const char *s = p->correlation_id.bytes;
    for (size_t i = 0; i < p->correlation_id.len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return;
    memcpy(out, s, p->correlation_id.len);
    out[p->correlation_id.len] = '\0';
}

void consume_log_event(const event *ev)
{
    log_set_request(ev && ev->request_id[0] ? ev->request_id : NULL, NULL, NULL);
}

/* Retention of the dedupe table, at most once per RETENTION_INTERVAL
 * (default 60 s): ids processed more than PROCESSED_EVENTS_RETENTION
 * (default 7 days) ago go, in batches.  Longer than any redelivery; a
 * dead-lettered message replayed later than that is applied again, which
 * an idempotent effect (the settle consumer's status transitions) absorbs.
 * Only in a consumer that uses the table (consume_dedupe). */
static void consume_retention(void)
{
    static struct timespec next;
    if (!dedupe_used)       /* a consumer with a dedupe table of its own (notify) */
        return;
    if (!config_due("RETENTION_INTERVAL", 60, &next))
        return;
    int64_t n = db_purge("DELETE FROM processed_events"
                         " WHERE processed_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                         " ORDER BY processed_at LIMIT ?",
                         config_int("PROCESSED_EVENTS_RETENTION", 604800), 500, 20);
    if (n > 0)
        log_info("consume: deleted %lld processed event ids", (long long)n);
    else if (n < 0)
        log_warn("consume: retention of processed_events failed (%lld)", (long long)n);
}

/* What a consumer program asked for: consume_run() or consume_run_batch(). */
typedef struct consume_spec {
    const char *queue;
    const char *const *types;
    consume_fn handle;              /* one event at a time, or */
    consume_batch_fn handle_batch;  /* a batch at a time */
    void *ctx;
    int max_batch, max_wait_ms;
} consume_spec;

/* The first pause before a failed event is given back (config
 * CONSUME_RETRY_MS, read once per session); it doubles up to 8 times it. */
static long consume_retry_ms = 1000;

/* Counts (and logs) a handler's verdict on one event of `count` returns so
 * far.  Returns the pause a CONSUME_RETRY asks for before its nack (by
 * default 1 s, 2 s, 4 s, at most 8 s), else 0. */
static int consume_account(const char *queue, const event *ev, long count, int verdict)
{
    consume_log_event(ev);
    if (verdict == CONSUME_OK) {
        metrics_inc(METRIC_EVENTS_PROCESSED, 1);
        return 0;
    }
    if (verdict == CONSUME_DEAD) {
        log_error("consume %s: event %s (%s) refused: dead-lettered", queue, ev->id, ev->type);
        metrics_inc(METRIC_EVENTS_DEAD_LETTERED, 1);
        return 0;
    }
    log_warn("consume %s: event %s (%s) failed, delivery %ld: given back", queue, ev->id,
             ev->type, count + 1);
    metrics_inc(METRIC_EVENTS_FAILED, 1);
    /* The broker dead-letters it once it was returned more than the
     * limit: this return is the one. */
    if (count + 1 > BROKER_DELIVERY_LIMIT) {
        metrics_inc(METRIC_EVENTS_DEAD_LETTERED, 1);
        log_error("consume %s: event %s failed %ld times: dead-lettered", queue, ev->id,
                  count + 1);
    }
    return (int)(consume_retry_ms << (count < 3 ? count : 3));
}

/* Parses a delivery for a handler: 0 with *ev and *root set (the
 * redelivery counted), or -1 (logged: it is to be dead-lettered). */
static int consume_read(const char *queue, amqp_envelope_t *env, event *ev, json_object **root)
{
    char why[96];
    const amqp_bytes_t *body = &env->message.body;
    if (consume_parse(body->bytes, body->len, ev, root, why, sizeof why) != 0) {
        log_error("consume %s: delivery %" PRIu64 " is no CloudEvent (%s): dead-lettered",
                  queue, (uint64_t)env->delivery_tag, why);
        metrics_inc(METRIC_EVENTS_DEAD_LETTERED, 1);
        return -1;
    }
    ev->redelivered = env->redelivered != 0;
    ev->delivery_count = delivery_count(&env->message.properties);
    request_id(&env->message.properties, ev->request_id);
    if (ev->redelivered)
        metrics_inc(METRIC_EVENTS_REDELIVERED, 1);
    return 0;
}

static int consume_acked(const char *queue, int rc)
{
    if (rc != AMQP_STATUS_OK) {
        log_warn("consume %s: ack/nack failed: %s", queue, amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* Handles one delivery; returns 0, or -1 when the connection failed. */
static int consume_one(broker *b, const consume_spec *s, amqp_envelope_t *env)
{
    event ev;
    json_object *root = NULL;
    int rc;
    if (consume_read(s->queue, env, &ev, &root) != 0) {
        rc = amqp_basic_reject(b->conn, BROKER_CHANNEL, env->delivery_tag, 0);
        return consume_acked(s->queue, rc);
    }
    consume_log_event(&ev);
    int verdict = s->handle(&ev, s->ctx);
    int pause = consume_account(s->queue, &ev, ev.delivery_count, verdict);
    consume_log_event(NULL);
    if (verdict == CONSUME_OK) {
        rc = amqp_basic_ack(b->conn, BROKER_CHANNEL, env->delivery_tag, 0);
    } else if (verdict == CONSUME_RETRY) {
        consume_pause(pause);
        rc = amqp_basic_nack(b->conn, BROKER_CHANNEL, env->delivery_tag, 0, 1);
    } else {
        rc = amqp_basic_reject(b->conn, BROKER_CHANNEL, env->delivery_tag, 0);
    }
    json_object_put(root);
    return consume_acked(s->queue, rc);
}

/* The working memory of a batch (CONSUME_BATCH_MAX of each). */
typedef struct consume_batch_mem {
    amqp_envelope_t env[CONSUME_BATCH_MAX];
    event ev[CONSUME_BATCH_MAX];            /* the parsed ones, in delivery order */
    json_object *root[CONSUME_BATCH_MAX];
    int of[CONSUME_BATCH_MAX];              /* ev[k] is env[of[k]] */
    int verdict[CONSUME_BATCH_MAX];         /* per ev[k] (the handler's) */
    int final[CONSUME_BATCH_MAX];           /* per env[i] */
} consume_batch_mem;

/* While the database is away, a batch consumer (whose handler needs it) does
 * not give events back: each return counts toward the delivery limit, and
 * ten of them, about a minute of an outage, would dead-letter events that
 * only wait for the database.  It holds them unacked instead, reading no
 * new deliveries (the broker stops at the prefetch anyway) and sending the
 * broker a heartbeat every 5 s, until the database answers again (or
 * CONSUME_HOLD_MAX_S, default 3600, has passed, or a stop is asked).
 * Returns 1 when the database was away and answers again, else 0 (it was
 * there all along: the events failed for another reason; or it stayed away). */
static int consume_hold_for_db(broker *b, const char *queue, int held)
{
    if (db_ping())
        return 0;
    long long start = config_now_ms(), beat = start;
    long long max_ms = (long long)config_int("CONSUME_HOLD_MAX_S", 3600) * 1000;
    log_warn("consume %s: the database is away: holding %d event(s) until it is back", queue,
             held);
    while (!consume_stopping && config_now_ms() - start < max_ms) {
        consume_pause(1000);
        if (config_now_ms() - beat >= 5000) {
            amqp_frame_t hb = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
            if (amqp_send_frame(b->conn, &hb) != AMQP_STATUS_OK)
                break;                  /* the broker is gone too: it gives them back */
            beat = config_now_ms();
        }
        if (db_ping()) {
            log_info("consume %s: the database is back after %lld s", queue,
                     (config_now_ms() - start) / 1000);
            return 1;
        }
    }
    return 0;
}

/* After a batch: while some of its events wait for the database (their
 * verdict CONSUME_RETRY with the database away), holds them and then runs
 * the handler again on just those. */
static void consume_retry_held(broker *b, const consume_spec *s, consume_batch_mem *m, int k)
{
    static event again[CONSUME_BATCH_MAX];
    static int at[CONSUME_BATCH_MAX], verdict[CONSUME_BATCH_MAX];
    for (;;) {
        int r = 0;
        for (int j = 0; j < k; j++)
            if (m->verdict[j] != CONSUME_OK && m->verdict[j] != CONSUME_DEAD) {
                again[r] = m->ev[j];
                at[r] = j;
                verdict[r++] = CONSUME_RETRY;
            }
        if (r == 0 || consume_stopping || !consume_hold_for_db(b, s->queue, r))
            return;
        s->handle_batch(again, r, verdict, s->ctx);
        for (int i = 0; i < r; i++)
            m->verdict[at[i]] = verdict[i];
    }
}

/* Handles the n deliveries in m->env: one handler call, then the acks.
 * Returns 0, or -1 when the connection failed. */
static int consume_batch(broker *b, const consume_spec *s, consume_batch_mem *m, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        m->final[i] = CONSUME_DEAD;
        if (consume_read(s->queue, &m->env[i], &m->ev[k], &m->root[k]) == 0) {
            m->of[k] = i;
            m->verdict[k] = CONSUME_RETRY;
            k++;
        }
    }
    if (k > 0) {
        s->handle_batch(m->ev, k, m->verdict, s->ctx);
        consume_retry_held(b, s, m, k);
    }
    int pause = 0;
    for (int j = 0; j < k; j++) {
        int v = m->verdict[j];
        if (v != CONSUME_OK && v != CONSUME_DEAD)
            v = CONSUME_RETRY;
        m->final[m->of[j]] = v;
        int p = consume_account(s->queue, &m->ev[j], m->ev[j].delivery_count, v);
        if (p > pause)
            pause = p;
        json_object_put(m->root[j]);
    }
    consume_log_event(NULL);
    /* The OK ones that lead the batch in one ack (`multiple`: every
     * delivery up to that tag, all of them this batch's), then the rest one
     * by one; the given-back ones last, after the pause. */
    int lead = 0;
    while (lead < n && m->final[lead] == CONSUME_OK)
        lead++;
    if (lead > 0 && consume_acked(s->queue, amqp_basic_ack(b->conn, BROKER_CHANNEL,
                                                           m->env[lead - 1].delivery_tag,
                                                           lead > 1)) != 0)
        return -1;
    for (int i = lead; i < n; i++) {
        int rc = AMQP_STATUS_OK;
        if (m->final[i] == CONSUME_OK)
            rc = amqp_basic_ack(b->conn, BROKER_CHANNEL, m->env[i].delivery_tag, 0);
        else if (m->final[i] == CONSUME_DEAD)
            rc = amqp_basic_reject(b->conn, BROKER_CHANNEL, m->env[i].delivery_tag, 0);
        if (consume_acked(s->queue, rc) != 0)
            return -1;
    }
    if (pause > 0)
        consume_pause(pause);
    for (int i = lead; i < n; i++)
        if (m->final[i] == CONSUME_RETRY &&
            consume_acked(s->queue, amqp_basic_nack(b->conn, BROKER_CHANNEL,
                                                    m->env[i].delivery_tag, 0, 1)) != 0)
            return -1;
    return 0;
}

/* After amqp_consume_message() said AMQP_STATUS_UNEXPECTED_STATE: a frame
 * other than a delivery, a close, or the broker cancelling the consumer (its
 * queue deleted).  Returns 0 to go on, -1 when the session is over. */
static int consume_other_frame(broker *b, const char *queue)
{
    amqp_frame_t f;
    if (broker_wait_frame(b, &f, 1000) <= 0)
        return -1;
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
        f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
        f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
        log_warn("consume %s: the broker closed the channel (method 0x%08x)", queue,
                 f.payload.method.id);
        if (f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
            amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
                             &(amqp_connection_close_ok_t){0});
        return -1;
    }
    return 0;
}

static void consume_lost(const char *queue, const broker *b, amqp_rpc_reply_t r)
{
    log_warn("consume %s: connection to %s lost (%s)", queue, b->node,
             r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                 ? amqp_error_string2(r.library_error) : "server exception");
}

/* Batch mode: m->env[0] arrived; takes more until max_batch or max_wait_ms
 * after it.  Returns the count, or -1 when the session is over (the
 * envelopes destroyed: the broker delivers them again). */
static int consume_collect(broker *b, const consume_spec *s, consume_batch_mem *m)
{
    int n = 1;
    long long deadline = config_now_ms() + s->max_wait_ms;
    while (n < s->max_batch && !consume_stopping) {
        long long left = deadline - config_now_ms();
        if (left <= 0)
            break;
        struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
        amqp_rpc_reply_t r = amqp_consume_message(b->conn, &m->env[n], &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            n++;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            break;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE && consume_other_frame(b, s->queue) == 0)
            continue;
        if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
              r.library_error == AMQP_STATUS_UNEXPECTED_STATE))
            consume_lost(s->queue, b, r);
        for (int i = 0; i < n; i++)
            amqp_destroy_envelope(&m->env[i]);
        return -1;
    }
    return n;
}

/* One connection's life: declare, consume until the connection fails or
 * a stop is asked.  Returns 1 when it ran (consumed), 0 when it never got
 * that far. */
static int consume_session(const consume_spec *s, consume_batch_mem *m)
{
    broker b;
    char who[160];
    const char *queue = s->queue;
    snprintf(who, sizeof who, "shop-consume %s (pid %d)", queue, (int)getpid());
    if (broker_open(&b, who) != 0)
        return 0;
    int ran = 0;
    long prefetch = config_int("CONSUME_PREFETCH", 16);
    if (prefetch < 1 || prefetch > 1000)
        prefetch = 16;
    if (s->handle_batch && prefetch < s->max_batch)
        prefetch = s->max_batch;
    consume_retry_ms = config_int("CONSUME_RETRY_MS", 1000);
    if (consume_retry_ms < 10 || consume_retry_ms > 60000)
        consume_retry_ms = 1000;
    if (broker_declare_queue(&b, queue, s->types) != 0)
        goto out;
    amqp_basic_qos(b.conn, BROKER_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (broker_ok(&b, "basic.qos") != 0)
        goto out;
    amqp_basic_consume(b.conn, BROKER_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0,
                       0, amqp_empty_table);
    if (broker_ok(&b, "basic.consume") != 0)
        goto out;
    ran = 1;
    if (s->handle_batch)
        log_info("consume %s: consuming on %s (batches of up to %d, %d ms, prefetch %ld)", queue,
                 b.node, s->max_batch, s->max_wait_ms, prefetch);
    else
        log_info("consume %s: consuming on %s", queue, b.node);
    while (!consume_stopping) {
        amqp_envelope_t env;
        struct timeval tv = {.tv_sec = 1};
        amqp_maybe_release_buffers(b.conn);
        amqp_rpc_reply_t r = amqp_consume_message(b.conn, s->handle_batch ? &m->env[0] : &env,
                                                  &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int rc;
            if (s->handle_batch) {
                int n = consume_collect(&b, s, m);
                if (n < 0)
                    break;
                rc = consume_batch(&b, s, m, n);
                for (int i = 0; i < n; i++)
                    amqp_destroy_envelope(&m->env[i]);
            } else {
                rc = consume_one(&b, s, &env);
                amqp_destroy_envelope(&env);
            }
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
            if (consume_other_frame(&b, queue) != 0)
                break;
            continue;
        }
        consume_lost(queue, &b, r);
        break;
    }
out:
    broker_close(&b);
    return ran;
}

static int consume_loop(const consume_spec *s)
{
    const char *queue = s->queue;
    if (!queue || !*queue || !s->types || !s->types[0] || (!s->handle && !s->handle_batch)) {
        log_error("consume_run: a queue, at least one type and a handler are required");
        return 1;
    }
    if (s->handle_batch && (s->max_batch < 1 || s->max_batch > CONSUME_BATCH_MAX ||
                            s->max_wait_ms < 0 || s->max_wait_ms > 1000)) {
        log_error("consume_run_batch: max_batch 1..%d and max_wait_ms 0..1000 (%d, %d)",
                  CONSUME_BATCH_MAX, s->max_batch, s->max_wait_ms);
        return 1;
    }
    consume_batch_mem *m = NULL;
    if (s->handle_batch && !(m = calloc(1, sizeof *m))) {
        log_error("consume %s: out of memory", queue);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = consume_on_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        log_error("consume %s: sigaction failed", queue);
        free(m);
        return 1;
    }
    int backoff = 500;
    while (!consume_stopping) {
        if (consume_session(s, m))
            backoff = 500;
        if (consume_stopping)
            break;
        consume_pause(backoff);
        backoff = backoff < 8000 ? backoff * 2 : 10000;
    }
    free(m);
    log_info("consume %s: stopped", queue);
    return 0;
}

int consume_run(const char *queue, const char *const *types, consume_fn handle, void *ctx)
{
    consume_spec s = {.queue = queue, .types = types, .handle = handle, .ctx = ctx};
    if (!handle) {
        log_error("consume_run: a handler is required");
        return 1;
    }
    return consume_loop(&s);
}

int consume_run_batch(const char *queue, const char *const *types, consume_batch_fn handle_batch,
                      void *ctx, int max_batch, int max_wait_ms)
{
    consume_spec s = {.queue = queue, .types = types, .handle_batch = handle_batch, .ctx = ctx,
                      .max_batch = max_batch, .max_wait_ms = max_wait_ms};
    if (!handle_batch) {
        log_error("consume_run_batch: a handler is required");
        return 1;
    }
    return consume_loop(&s);
}
