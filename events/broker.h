/* broker.h: one AMQP 0-9-1 connection to the RabbitMQ cluster (rabbitmq-c),
 * shared by the outbox relay and the consumer framework, and the topology
 * both declare idempotently on connect (docs/EVENTS.md):
 *   - the durable topic exchange shop.events (routing key = event type);
 *   - per consumer, a quorum queue bound to its types, with a delivery
 *     limit and a dead-letter queue <queue>.dead (reached through the
 *     default exchange), itself a quorum queue.
 * Settings from lib/config: AMQP_HOSTS (host:port,host:port,...: tried in
 * turn, starting after the last one that failed), AMQP_USER, AMQP_PASSWORD,
 * AMQP_VHOST (default "/"), AMQP_HEARTBEAT (seconds, default 10). */
#ifndef SHOP_BROKER_H
#define SHOP_BROKER_H

#include <stdbool.h>
#include <amqp.h>

#define BROKER_EXCHANGE "shop.events"
#define BROKER_CHANNEL 1
/* A message a consumer gave back this many times is dead-lettered. */
#define BROKER_DELIVERY_LIMIT 10

typedef struct broker {
    amqp_connection_state_t conn;   /* NULL when closed */
    char node[128];                 /* host:port connected to */
} broker;

/* Connects (first answering node of AMQP_HOSTS), logs in, opens channel
 * BROKER_CHANNEL and declares the exchange.  `who` names the connection in
 * the broker's UI and in log lines.  Returns 0, or -1 (logged, closed). */
int broker_open(broker *b, const char *who);

/* Closes the channel and the connection (quietly when already broken). */
void broker_close(broker *b);

/* After a synchronous call (amqp_queue_declare...): 0 when it succeeded,
 * else -1, with what failed logged as `what`. */
int broker_ok(broker *b, const char *what);

/* Declares the quorum queue `queue` (dead-lettering to `queue`.dead after
 * BROKER_DELIVERY_LIMIT returns), that dead-letter queue, and binds `queue`
 * to shop.events for each routing key in the NULL-terminated `keys`
 * ("order.confirmed", or a pattern such as "order.*").  0 or -1 (logged). */
int broker_declare_queue(broker *b, const char *queue, const char *const *keys);

/* Waits up to ms milliseconds for a frame on the connection (heartbeats are
 * answered meanwhile).  Returns 1 with *frame filled, 0 on timeout, -1 when
 * the connection is gone. */
int broker_wait_frame(broker *b, amqp_frame_t *frame, int ms);

#endif
