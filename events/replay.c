/* replay.c: see replay.h. */
#include "replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <amqp.h>

#include "broker.h"
#include "log.h"

#define REPLAY_CONFIRM_MS 10000

/* Waits for the confirm of publish `tag`.  0 acked, -1 otherwise (nacked,
 * returned as unroutable, timed out, connection lost). */
static int replay_confirm(broker *b, uint64_t tag)
{
    int returned = 0;
    for (int waited = 0; waited < REPLAY_CONFIRM_MS; waited += 500) {
        amqp_frame_t f;
        int got = broker_wait_frame(b, &f, 500);
        if (got < 0)
            return -1;
        if (got == 0 || f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == tag || (a->multiple && a->delivery_tag >= tag))
                return returned ? -1 : 0;
            break;
        }
        case AMQP_BASIC_NACK_METHOD:
            log_error("replay: the broker refused the message");
            return -1;
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_message_t msg;
            log_error("replay: the message could not be routed (no such queue?)");
            if (amqp_read_message(b->conn, f.channel, &msg, 0).reply_type != AMQP_RESPONSE_NORMAL)
                return -1;
            amqp_destroy_message(&msg);
            returned = 1;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            log_error("replay: the broker closed the channel");
            return -1;
        default:
            break;
        }
    }
    log_error("replay: no confirm within %d ms", REPLAY_CONFIRM_MS);
    return -1;
}

int replay_run(const char *dead_queue, long max)
{
    size_t n = strlen(dead_queue);
    if (n <= 5 || n > 200 || strcmp(dead_queue + n - 5, ".dead") != 0) {
        fprintf(stderr, "replay: %s is not a dead-letter queue (<queue>.dead)\n", dead_queue);
        return 1;
    }
    char target[256];
    snprintf(target, sizeof target, "%.*s", (int)(n - 5), dead_queue);
    broker b;
    if (broker_open(&b, "shop-consume replay") != 0)
        return 1;
    amqp_confirm_select(b.conn, BROKER_CHANNEL);
    if (broker_ok(&b, "confirm.select") != 0) {
        broker_close(&b);
        return 1;
    }
    /* Only what is there now: a message that fails again comes back to the
     * dead-letter queue and must not be replayed in a loop. */
    amqp_queue_declare_ok_t *q = amqp_queue_declare(b.conn, BROKER_CHANNEL, amqp_cstring_bytes(dead_queue),
                                                    1, 0, 0, 0, amqp_empty_table);
    if (broker_ok(&b, "queue.declare (passive)") != 0 || !q) {
        fprintf(stderr, "replay: no queue %s\n", dead_queue);
        broker_close(&b);
        return 1;
    }
    long there = (long)q->message_count;
    if (max < 0 || max > there)
        max = there;
    long done = 0;
    int rc = 0;
    uint64_t publish_tag = 0;
    while (done < max) {
        amqp_rpc_reply_t r = amqp_basic_get(b.conn, BROKER_CHANNEL, amqp_cstring_bytes(dead_queue), 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            log_error("replay: basic.get on %s failed", dead_queue);
            rc = 1;
            break;
        }
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break;
        uint64_t tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
        amqp_message_t msg;
        if (amqp_read_message(b.conn, BROKER_CHANNEL, &msg, 0).reply_type != AMQP_RESPONSE_NORMAL) {
            log_error("replay: reading a message of %s failed", dead_queue);
            rc = 1;
            break;
        }
        amqp_basic_properties_t p = msg.properties;
        p._flags &= ~AMQP_BASIC_HEADERS_FLAG;      /* x-death, x-delivery-count: a fresh start */
        p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
        p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
        int prc = amqp_basic_publish(b.conn, BROKER_CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(target),
                                     1, 0, &p, msg.body);
        publish_tag++;
        char id[130] = "?";
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            snprintf(id, sizeof id, "%.*s", (int)msg.properties.message_id.len,
                     (const char *)msg.properties.message_id.bytes);
        amqp_destroy_message(&msg);
        if (prc != AMQP_STATUS_OK || replay_confirm(&b, publish_tag) != 0) {
            /* Not safely in the target: the dead letter stays where it is. */
            amqp_basic_reject(b.conn, BROKER_CHANNEL, tag, 1);
            log_error("replay: message %s not replayed; left in %s", id, dead_queue);
            rc = 1;
            break;
        }
        if (amqp_basic_ack(b.conn, BROKER_CHANNEL, tag, 0) != AMQP_STATUS_OK) {
            log_error("replay: message %s replayed but not removed from %s (it may come twice)", id,
                      dead_queue);
            rc = 1;
            break;
        }
        log_info("replay: message %s moved from %s to %s", id, dead_queue, target);
        done++;
    }
    broker_close(&b);
    printf("replayed %ld message(s) from %s to %s\n", done, dead_queue, target);
    return rc;
}
