/* notify.h: `shop-consume notify`: one email per order.confirmed and per
 * order.cancelled event (events/mail.h), to the order's customer.
 *
 * Runs with its own DB user shop_notify (config notify.conf): its database
 * shop_notify holds sent_notifications, and of auth's data it may read only
 * users.id, email and name (schema.sql), the recipient.  Exactly one email
 * per event id: the event's row is inserted and locked, the email sent while
 * the lock is held, and sent_at set in the same transaction; a duplicate
 * delivery (at-least-once) waits for that lock, finds sent_at and sends
 * nothing.  Only a crash (or the database lost) between the relay's "250
 * OK" and that commit can send an email twice; its Message-ID is the event
 * id, so mail clients collapse such a duplicate.
 *
 * It runs in batch mode (notify_handle_batch): the events that arrived
 * together, up to NOTIFY_BATCH (default 16), are recorded in ONE
 * transaction, their emails sent inside it one by one, so the bookkeeping
 * costs one Galera commit per batch instead of one per order; a batch that
 * fails for another reason than the database being away is redone one
 * event per transaction, so a poison event fails alone. */
#ifndef SHOP_NOTIFY_H
#define SHOP_NOTIFY_H

#include "consume.h"

/* Checks SMTP_URL and MAIL_FROM.  0 or -1 (logged). */
int notify_init(void);

/* A consume_batch_fn; per event: CONSUME_OK (sent, or sent before),
 * CONSUME_RETRY (database or relay unavailable), CONSUME_DEAD (an order
 * event without usable data, an unknown user: never going to work). */
void notify_handle_batch(const event *evs, int n, int *verdicts, void *ctx);

#endif
