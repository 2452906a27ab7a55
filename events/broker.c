/* broker.c: see broker.h. */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <amqp_tcp_socket.h>

#include "config.h"
#include "log.h"

/* The node to try first next time: the one after the last that failed. */
static unsigned broker_next;

static int broker_nodes(char nodes[][128], int max)
{
    const char *list = config_get("AMQP_HOSTS", "127.0.0.1:5672");
    int n = 0;
    while (*list && n < max) {
        size_t len = strcspn(list, ", ");
        if (len > 0 && len < 128) {
            memcpy(nodes[n], list, len);
            nodes[n][len] = '\0';
            n++;
        }
        list += len;
        list += strspn(list, ", ");
    }
    return n;
}

int broker_ok(broker *b, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        log_error("broker %s: %s: no reply", b->node, what);
        return -1;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        log_error("broker %s: %s: %s", b->node, what, amqp_error_string2(r.library_error));
        return -1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *c = r.reply.decoded;
            log_error("broker %s: %s: connection closed: %u %.*s", b->node, what, c->reply_code,
                      (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *c = r.reply.decoded;
            log_error("broker %s: %s: channel closed: %u %.*s", b->node, what, c->reply_code,
                      (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else {
            log_error("broker %s: %s: server method 0x%08x", b->node, what, r.reply.id);
        }
        return -1;
    }
    return -1;
}

static int broker_try(broker *b, const char *node, const char *who)
{
    char host[128];
    snprintf(host, sizeof host, "%s", node);
    char *colon = strrchr(host, ':');
    int port = 5672;
    if (colon) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    snprintf(b->node, sizeof b->node, "%s", node);
    b->conn = amqp_new_connection();
    if (!b->conn) {
        log_error("broker: out of memory");
        return -1;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(b->conn);
    if (!sock) {
        log_error("broker: cannot create a socket");
        broker_close(b);
        return -1;
    }
    struct timeval tv = {.tv_sec = 3};
    int rc = amqp_socket_open_noblock(sock, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        log_warn("broker %s: connect: %s", node, amqp_error_string2(rc));
        broker_close(b);
        return -1;
    }
    /* The handshake, login and declarations must not hang on a node that
     * accepts and then stalls. */
    struct timeval rpc = {.tv_sec = 10};
    if (amqp_set_rpc_timeout(b->conn, &rpc) != AMQP_STATUS_OK ||
        amqp_set_handshake_timeout(b->conn, &rpc) != AMQP_STATUS_OK) {
        log_error("broker: cannot set the RPC timeout");
        broker_close(b);
        return -1;
    }
    amqp_table_entry_t props[1];
    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(who);
    amqp_table_t table = {1, props};
    amqp_rpc_reply_t r = amqp_login_with_properties(
        b->conn, config_get("AMQP_VHOST", "/"), 0, 131072,
        (int)config_int("AMQP_HEARTBEAT", 10), &table, AMQP_SASL_METHOD_PLAIN,
        config_get("AMQP_USER", "guest"), config_get("AMQP_PASSWORD", "guest"));
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
            log_warn("broker %s: login: %s", node, amqp_error_string2(r.library_error));
        else
            log_warn("broker %s: login refused (user %s)", node, config_get("AMQP_USER", "guest"));
        broker_close(b);
        return -1;
    }
    amqp_channel_open(b->conn, BROKER_CHANNEL);
    if (broker_ok(b, "channel.open") != 0) {
        broker_close(b);
        return -1;
    }
    amqp_exchange_declare(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(BROKER_EXCHANGE),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (broker_ok(b, "exchange.declare " BROKER_EXCHANGE) != 0) {
        broker_close(b);
        return -1;
    }
    return 0;
}

int broker_open(broker *b, const char *who)
{
    char nodes[8][128];
    int n = broker_nodes(nodes, 8);
    memset(b, 0, sizeof *b);
    unsigned first = broker_next;      /* moves on as nodes fail, below */
    for (int i = 0; i < n; i++) {
        unsigned k = (first + (unsigned)i) % (unsigned)n;
        if (broker_try(b, nodes[k], who) == 0) {
            log_info("broker: %s connected to %s", who, nodes[k]);
            return 0;
        }
        broker_next = k + 1;
    }
    log_warn("broker: no node of AMQP_HOSTS answered (%d tried)", n);
    return -1;
}

void broker_close(broker *b)
{
    if (!b->conn)
        return;
    /* A clean close when the connection still works; its replies are not
     * worth waiting long for. */
    struct timeval tv = {.tv_sec = 2};
    amqp_set_rpc_timeout(b->conn, &tv);
    amqp_channel_close(b->conn, BROKER_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(b->conn);
    b->conn = NULL;
}

static int broker_declare_one(broker *b, const char *queue, const char *dead)
{
    amqp_table_entry_t args[4];
    int n = 0;
    args[n].key = amqp_cstring_bytes("x-queue-type");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes("quorum");
    if (dead) {
        args[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
        args[n].value.kind = AMQP_FIELD_KIND_UTF8;
        args[n++].value.value.bytes = amqp_cstring_bytes("");
        args[n].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        args[n].value.kind = AMQP_FIELD_KIND_UTF8;
        args[n++].value.value.bytes = amqp_cstring_bytes(dead);
        args[n].key = amqp_cstring_bytes("x-delivery-limit");
        args[n].value.kind = AMQP_FIELD_KIND_I32;
        args[n++].value.value.i32 = BROKER_DELIVERY_LIMIT;
    }
    amqp_table_t table = {n, args};
    amqp_queue_declare(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, table);
    char what[200];
    snprintf(what, sizeof what, "queue.declare %s", queue);
    return broker_ok(b, what);
}

int broker_declare_queue(broker *b, const char *queue, const char *const *keys)
{
    char dead[256];
    int len = snprintf(dead, sizeof dead, "%s.dead", queue);
    if (len < 0 || (size_t)len >= sizeof dead) {
        log_error("broker: queue name too long: %s", queue);
        return -1;
    }
    if (broker_declare_one(b, dead, NULL) != 0 || broker_declare_one(b, queue, dead) != 0)
        return -1;
    for (size_t i = 0; keys && keys[i]; i++) {
        amqp_queue_bind(b->conn, BROKER_CHANNEL, amqp_cstring_bytes(queue),
                        amqp_cstring_bytes(BROKER_EXCHANGE), amqp_cstring_bytes(keys[i]),
                        amqp_empty_table);
        char what[300];
        snprintf(what, sizeof what, "queue.bind %s %s", queue, keys[i]);
        if (broker_ok(b, what) != 0)
            return -1;
    }
    return 0;
}

int broker_wait_frame(broker *b, amqp_frame_t *frame, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int rc = amqp_simple_wait_frame_noblock(b->conn, frame, &tv);
    if (rc == AMQP_STATUS_OK)
        return 1;
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    log_warn("broker %s: connection lost: %s", b->node, amqp_error_string2(rc));
    return -1;
}
