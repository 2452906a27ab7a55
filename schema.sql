-- schema.sql: the three services' databases, and one DB user per service
-- granted only its own database.  Idempotent: safe to load on every start.
--
-- The loader (scripts/stack, galera/bootstrap) sets the passwords first:
--   SET @auth_pw='…', @product_pw='…', @order_pw='…', @notify_pw='…', @monitor_pw='…';
-- so no secret lives in this file.  Galera needs a primary key on every table
-- and InnoDB; every table is utf8mb4.

CREATE DATABASE IF NOT EXISTS shop_auth CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS shop_product CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS shop_order CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS shop_notify CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- ---------------------------------------------------------------- auth
CREATE TABLE IF NOT EXISTS shop_auth.users (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(254) NOT NULL,            -- as registered, trimmed
    -- lower-cased: the identity.  Accent-sensitive but case-insensitive, so
    -- the unique index also folds non-ASCII case (E/e, Ä/ä) without making
    -- 'jose' and 'josé' the same account (utf8mb4_unicode_ci would).
    email_norm    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_as_ci NOT NULL,
    name          VARCHAR(200) NULL,                -- NULL: not given
    role          ENUM('customer','seller','admin') NOT NULL DEFAULT 'customer',
    password_hash VARCHAR(255) NOT NULL,            -- Argon2id, crypto_pwhash_str
    created_at    DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY users_email_norm (email_norm)
) ENGINE=InnoDB;

-- One row per refresh token issued and not yet purged.  family_id ties
-- together every token descended from one login, so reuse of a spent token
-- revokes the family.  The auth sweep (cgi/auth/sweep.c) deletes tokens
-- spent (used or revoked: spent_at) or expired longer than its retention.
CREATE TABLE IF NOT EXISTS shop_auth.refresh_tokens (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash  BINARY(32) NOT NULL,                -- SHA-256 of the token
    family_id   BINARY(16) NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    status      ENUM('active','used','revoked') NOT NULL DEFAULT 'active',
    expires_at  DATETIME(3) NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    spent_at    DATETIME(3) NULL,                   -- when it became used or revoked
    UNIQUE KEY refresh_tokens_hash (token_hash),
    KEY refresh_tokens_family (family_id),
    KEY refresh_tokens_user (user_id, status),      -- a password change revokes them all
    KEY refresh_tokens_spent (spent_at),
    KEY refresh_tokens_expiry (expires_at)
) ENGINE=InnoDB;
ALTER TABLE shop_auth.refresh_tokens
    ADD COLUMN IF NOT EXISTS spent_at DATETIME(3) NULL AFTER created_at,
    ADD KEY IF NOT EXISTS refresh_tokens_spent (spent_at),
    ADD KEY IF NOT EXISTS refresh_tokens_expiry (expires_at),
    ADD KEY IF NOT EXISTS refresh_tokens_user (user_id, status);

-- Transactional outbox of auth's events (user.role_changed,
-- user.password_changed, user.tokens_revoked: docs/EVENTS.md), written in the transaction of the
-- change; the relay (shop-relay auth) publishes pending rows (published_at
-- NULL) in id order and stamps them.  Same columns as every outbox.
CREATE TABLE IF NOT EXISTS shop_auth.outbox (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_type   VARCHAR(64) NOT NULL,
    subject      VARCHAR(64) NOT NULL,              -- the user id, as text
    payload      TEXT NOT NULL,                     -- the CloudEvent's data (JSON)
    created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    published_at DATETIME(3) NULL,
    request_id   VARCHAR(128) NULL,                 -- X-Request-ID of the change's request
    KEY outbox_pending (published_at, id)
) ENGINE=InnoDB;
ALTER TABLE shop_auth.outbox
    ADD COLUMN IF NOT EXISTS request_id VARCHAR(128) NULL AFTER published_at;

-- ---------------------------------------------------------------- product
CREATE TABLE IF NOT EXISTS shop_product.products (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name        VARCHAR(200) NOT NULL,              -- _ci collation: q is case-insensitive
    description TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency    CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    stock       BIGINT NOT NULL DEFAULT 0,
    status      ENUM('active','draft','archived') NOT NULL DEFAULT 'draft',
    seller_id   BIGINT UNSIGNED NOT NULL,
    version     BIGINT UNSIGNED NOT NULL DEFAULT 1,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY products_sku (sku),
    KEY products_status_id (status, id),            -- public list: keyset on id
    KEY products_seller_id (seller_id, id),
    KEY products_seller_status_id (seller_id, status, id),  -- a seller's drafts / archived
    CONSTRAINT products_stock_nonneg CHECK (stock >= 0)
) ENGINE=InnoDB;

-- q's word search (cgi/product/store.c store_search_query has the rule).
-- Indexed with the stopword list off, so "the" or "about" are words like any
-- other; galera/node.cnf.in turns it off on every node, because the index is
-- also built by each node applying this DDL, with that node's global setting.
-- Separate from CREATE TABLE so a table from before the index gets it too: the
-- first FULLTEXT index rebuilds the table (adds FTS_DOC_ID), once, and Galera
-- runs the DDL on every node (total order: writes wait for it).
SET SESSION innodb_ft_enable_stopword = OFF;
CREATE FULLTEXT INDEX IF NOT EXISTS products_name_ft ON shop_product.products (name);

-- Stock taken for an order the order service is about to write, keyed by a
-- reservation id that service chooses (derived from the user and the
-- Idempotency-Key when there is one, so a retry lands on the same row and a
-- repeated reserve is a no-op).  held until expires_at, then confirmed (the
-- order stands) or released (it does not, or it was cancelled); only the
-- order service decides which.
CREATE TABLE IF NOT EXISTS shop_product.reservations (
    id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    user_id     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    status      ENUM('held','confirmed','released') NOT NULL DEFAULT 'held',
    expires_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY reservations_expiry (status, expires_at)
) ENGINE=InnoDB;

-- One row per reserved line.  The sale data (sku, name, price, currency) is
-- copied at reserve time so a repeated reserve answers exactly what the first
-- one did, whatever edits happened since; line_no keeps the request's order.
CREATE TABLE IF NOT EXISTS shop_product.reservation_items (
    reservation_id   BIGINT UNSIGNED NOT NULL,
    product_id       BIGINT UNSIGNED NOT NULL,
    line_no          INT NOT NULL DEFAULT 0,
    quantity         INT NOT NULL,
    sku              VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    name             VARCHAR(200) NOT NULL DEFAULT '',
    unit_price_cents BIGINT NOT NULL DEFAULT 0,
    currency         CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    PRIMARY KEY (reservation_id, product_id)
) ENGINE=InnoDB;

-- From the shape where reservations were keyed by order id (that id stays
-- the reservation's id; the order rows below point back at it).
ALTER TABLE shop_product.reservations
    CHANGE COLUMN IF EXISTS order_id id BIGINT UNSIGNED NOT NULL,
    ADD COLUMN IF NOT EXISTS user_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER id,
    ADD COLUMN IF NOT EXISTS expires_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) AFTER status,
    DROP KEY IF EXISTS reservations_status,
    ADD KEY IF NOT EXISTS reservations_expiry (status, expires_at);
ALTER TABLE shop_product.reservation_items
    CHANGE COLUMN IF EXISTS order_id reservation_id BIGINT UNSIGNED NOT NULL;

-- One line of a reservation, run inside the server so the row lock is held
-- for no round trip to the client.  The reservation transaction
-- (cgi/product/store.c) calls it once per line, in ascending product id,
-- between its START TRANSACTION and COMMIT; the first line's call
-- (p_first = 1) also writes the reservation row, the key a concurrent
-- duplicate of the same reservation waits on (error 1062: that duplicate
-- then replays the stored reservation).  It locks the product row
-- (SELECT ... FOR UPDATE), and only if the product is active and holds
-- p_quantity takes the stock and records the line.  Its OUT parameters are
-- the row as read under the lock (o_status NULL: no such product); a
-- prepared CALL gets them as one result row.  The caller rolls the
-- whole transaction back when any line could not be taken.  Stock therefore
-- never goes below zero, whatever runs concurrently.  (Table names are
-- unqualified: a routine's statements run in its own database.)
DELIMITER //
CREATE OR REPLACE PROCEDURE shop_product.reserve_line(
    p_reservation BIGINT UNSIGNED, p_user BIGINT UNSIGNED, p_ttl INT, p_first INT,
    p_line INT, p_product BIGINT UNSIGNED, p_quantity INT,
    OUT o_sku VARCHAR(64) CHARACTER SET ascii, OUT o_name VARCHAR(200) CHARACTER SET utf8mb4,
    OUT o_price BIGINT, OUT o_currency CHAR(3) CHARACTER SET ascii, OUT o_stock BIGINT,
    OUT o_status VARCHAR(16))
    MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET o_status = NULL;
    SET o_status = NULL;
    IF p_first THEN
        INSERT INTO reservations (id, user_id, status, expires_at, created_at, updated_at)
        VALUES (p_reservation, p_user, 'held', UTC_TIMESTAMP(3) + INTERVAL p_ttl SECOND,
                UTC_TIMESTAMP(3), UTC_TIMESTAMP(3));
    END IF;
    SELECT sku, name, price_cents, currency, stock, status
      INTO o_sku, o_name, o_price, o_currency, o_stock, o_status
      FROM products WHERE id = p_product FOR UPDATE;
    IF o_status = 'active' AND o_stock >= p_quantity THEN
        UPDATE products
           SET stock = stock - p_quantity, version = version + 1, updated_at = UTC_TIMESTAMP(3)
         WHERE id = p_product;
        INSERT INTO reservation_items (reservation_id, product_id, line_no, quantity,
                                       sku, name, unit_price_cents, currency)
        VALUES (p_reservation, p_product, p_line, p_quantity, o_sku, o_name, o_price, o_currency);
    END IF;
END //
DELIMITER ;

-- ---------------------------------------------------------------- order
-- An order is written once, confirmed, in the transaction that also writes
-- its items, its outbox event and its Idempotency-Key reply.  'failed' rows
-- are fences: a reservation that outlived its TTL without an order gets one
-- (same reservation_id), so the UNIQUE key makes "its order was written" and
-- "it was given up" mutually exclusive.  pending and failed are never shown
-- to clients ('pending' is left from an earlier shape and no longer written);
-- the sweep deletes failed rows FAILED_ORDER_RETENTION (7 days) after.
CREATE TABLE IF NOT EXISTS shop_order.orders (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    reservation_id BIGINT UNSIGNED NULL,            -- product's reservation (NULL: legacy, = id)
    status       ENUM('pending','confirmed','cancelled','failed') NOT NULL DEFAULT 'pending',
    -- what the product service holds for this order, as far as we know:
    -- the sweep drives it to match status (confirmed->confirmed, else released)
    stock_state  ENUM('none','held','confirmed','released') NOT NULL DEFAULT 'none',
    total_cents  BIGINT NOT NULL DEFAULT 0,
    currency     CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY orders_user_id (user_id, id),
    KEY orders_status_updated (status, updated_at),
    UNIQUE KEY orders_reservation (reservation_id),
    KEY orders_stock_state (stock_state, status)     -- the sweep's unsettled stock
) ENGINE=InnoDB;
ALTER TABLE shop_order.orders
    ADD COLUMN IF NOT EXISTS reservation_id BIGINT UNSIGNED NULL AFTER user_id,
    ADD UNIQUE KEY IF NOT EXISTS orders_reservation (reservation_id);

CREATE TABLE IF NOT EXISTS shop_order.order_items (
    order_id         BIGINT UNSIGNED NOT NULL,
    line_no          INT NOT NULL,
    product_id       BIGINT UNSIGNED NOT NULL,
    sku              VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    name             VARCHAR(200) NOT NULL DEFAULT '',
    unit_price_cents BIGINT NOT NULL DEFAULT 0,
    quantity         INT NOT NULL,
    line_total_cents BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_no)
) ENGINE=InnoDB;

-- Idempotency-Key records, per user: the final response of the first request
-- (written with the order, or with a refusal), so a repeat with the same body
-- replays it.  The order sweep deletes a record IDEMPOTENCY_RETENTION (24 h)
-- after it was written; a later request with that key is a new one.  While that request runs, a named lock on the writer says so
-- ('running' rows are left from an earlier shape and no longer written).
CREATE TABLE IF NOT EXISTS shop_order.idempotency_keys (
    user_id         BIGINT UNSIGNED NOT NULL,
    idem_key        VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash    BINARY(32) NOT NULL,
    status          ENUM('running','done') NOT NULL DEFAULT 'running',
    response_status INT NOT NULL DEFAULT 0,
    response_body   MEDIUMTEXT NULL,
    order_id        BIGINT UNSIGNED NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (user_id, idem_key),
    KEY idempotency_keys_status (status, updated_at)  -- the sweep's stuck keys
) ENGINE=InnoDB;

-- Transactional outbox: events written in the same transaction as the state
-- change; shop-relay publishes them to the broker and only then sets
-- published_at (NULL: pending).  subject is the order id as text (every
-- service's outbox has these columns: lib/outbox.h, docs/EVENTS.md); payload
-- is the CloudEvent's data; request_id the X-Request-ID of the request that
-- made the change (NULL for the sweep's), which the relay passes on as the
-- message's correlation-id, so the consumers' log lines carry it too.
CREATE TABLE IF NOT EXISTS shop_order.outbox (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_type   VARCHAR(64) NOT NULL,
    subject      VARCHAR(64) NOT NULL DEFAULT '',
    order_id     BIGINT UNSIGNED NOT NULL,
    payload      TEXT NOT NULL,
    created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    published_at DATETIME(3) NULL DEFAULT NULL,
    request_id   VARCHAR(128) NULL,
    KEY outbox_pending (published_at, id)
) ENGINE=InnoDB;
ALTER TABLE shop_order.outbox
    ADD COLUMN IF NOT EXISTS request_id VARCHAR(128) NULL AFTER published_at;
-- From the outbox nothing read: rows written before the relay existed count
-- as published (their orders were settled by the sweep long ago; no
-- consumer should see them now): the column arrives with a past date in
-- every existing row, then its default becomes NULL for new rows.
ALTER TABLE shop_order.outbox
    ADD COLUMN IF NOT EXISTS subject VARCHAR(64) NOT NULL DEFAULT '' AFTER event_type,
    ADD COLUMN IF NOT EXISTS published_at DATETIME(3) NULL DEFAULT '1970-01-01 00:00:01';
ALTER TABLE shop_order.outbox
    ALTER COLUMN published_at SET DEFAULT NULL,
    ADD KEY IF NOT EXISTS outbox_pending (published_at, id);
UPDATE shop_order.outbox SET subject = CAST(order_id AS CHAR) WHERE subject = '';

-- Events product's consumers have applied (shop-consume settle), written in
-- the transaction of the effect: a redelivered event finds its id here.
CREATE TABLE IF NOT EXISTS shop_product.processed_events (
    id           VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    processed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY processed_events_at (processed_at)
) ENGINE=InnoDB;

-- ---------------------------------------------------------------- notify
-- One row per order event the notifier (shop-consume notify) has taken on:
-- the email for event_id is sent while this row is locked and sent_at set
-- in the same transaction, so a duplicate delivery finds it sent and sends
-- nothing (docs/EVENTS.md, Notifications).
CREATE TABLE IF NOT EXISTS shop_notify.sent_notifications (
    event_id    VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    event_type  VARCHAR(64) NOT NULL,
    order_id    BIGINT UNSIGNED NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    recipient   VARCHAR(254) NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at     DATETIME(3) NULL,
    KEY sent_notifications_order (order_id)
) ENGINE=InnoDB;

-- ---------------------------------------------------------------- users
-- Passwords come from the loader's session variables (see top).
SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_auth@''%'' IDENTIFIED BY ', QUOTE(@auth_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_auth@''%'' IDENTIFIED BY ', QUOTE(@auth_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop_auth.* TO shop_auth@'%';

SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_product@''%'' IDENTIFIED BY ', QUOTE(@product_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_product@''%'' IDENTIFIED BY ', QUOTE(@product_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON shop_product.* TO shop_product@'%';

SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_order@''%'' IDENTIFIED BY ', QUOTE(@order_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_order@''%'' IDENTIFIED BY ', QUOTE(@order_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop_order.* TO shop_order@'%';

-- The notifier: its own database, and of auth's data only what an email
-- needs (a user's address and name), never a password hash or token.
SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_notify@''%'' IDENTIFIED BY ', QUOTE(@notify_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_notify@''%'' IDENTIFIED BY ', QUOTE(@notify_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop_notify.* TO shop_notify@'%';
GRANT SELECT (id, email, name) ON shop_auth.users TO shop_notify@'%';

-- The health-check user: may connect and read status, nothing else.
SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_monitor@''%'' IDENTIFIED BY ', QUOTE(@monitor_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_monitor@''%'' IDENTIFIED BY ', QUOTE(@monitor_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT USAGE ON *.* TO shop_monitor@'%';
