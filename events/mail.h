/* mail.h: the notification emails of `shop-consume notify`: a plain-text
 * message for a confirmed or cancelled order (order id, lines, total), and
 * its delivery over SMTP with libcurl to the relay of the config (SMTP_URL,
 * smtp:// or smtps://; MAIL_FROM the envelope and From address). */
#ifndef SHOP_MAIL_H
#define SHOP_MAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <json-c/json.h>

/* True when addr is a plain address safe in a header and an SMTP command
 * (local@domain, printable, no spaces, no <>()",;:\ and no CR/LF). */
bool mail_address_ok(const char *addr);

/* Formats the message (RFC 5322, CRLF line ends, UTF-8 plain text) for an
 * event of type "order.confirmed" or "order.cancelled" whose data is the
 * order event's data ({order_id, items[{sku, name, unit_price_cents,
 * quantity, line_total_cents}], total_cents, currency}).  event_id becomes
 * the Message-ID, now the Date; name (may be NULL) the greeting.  Returns a
 * malloc'd string, or NULL when the type is not one of those, the order
 * lacks a field, or an address is not mail_address_ok(). */
char *mail_format_order(const char *type, json_object *order, const char *event_id,
                        const char *from, const char *to, const char *name, time_t now);

/* Sends message from `from` to `to` through smtp_url (timeouts 10 s connect,
 * 30 s in all).  Returns 0, or -1 with the reason logged. */
int mail_send(const char *smtp_url, const char *from, const char *to, const char *message);

#endif
