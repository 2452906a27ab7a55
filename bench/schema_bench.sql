-- schema_bench.sql: the tables bench/order_tx.lua (the order ceiling) runs on,
-- in their own database so the ceiling never touches the shop's data.  Same
-- shape as schema.sql and the columns cgi/*/store.c write.  bench/run.py loads
-- it as root on node 1 and fills products with @rows rows of stock 10^9.
DROP DATABASE IF EXISTS shop_bench;
CREATE DATABASE shop_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop_bench;
CREATE TABLE products (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name        VARCHAR(200) NOT NULL,
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
    KEY products_status_id (status, id),
    KEY products_seller_id (seller_id, id),
    CONSTRAINT products_stock_nonneg CHECK (stock >= 0)
) ENGINE=InnoDB;
CREATE TABLE reservations (
    order_id    BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    status      ENUM('held','confirmed','released') NOT NULL DEFAULT 'held',
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY reservations_status (status, created_at)
) ENGINE=InnoDB;
CREATE TABLE reservation_items (
    order_id         BIGINT UNSIGNED NOT NULL,
    product_id       BIGINT UNSIGNED NOT NULL,
    line_no          INT NOT NULL,
    quantity         INT NOT NULL,
    sku              VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    name             VARCHAR(200) NOT NULL DEFAULT '',
    unit_price_cents BIGINT NOT NULL DEFAULT 0,
    currency         CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, product_id)
) ENGINE=InnoDB;
CREATE TABLE orders (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    status       ENUM('pending','confirmed','cancelled','failed') NOT NULL DEFAULT 'pending',
    stock_state  ENUM('none','held','confirmed','released') NOT NULL DEFAULT 'none',
    total_cents  BIGINT NOT NULL DEFAULT 0,
    currency     CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY orders_user_id (user_id, id),
    KEY orders_status_updated (status, updated_at)
) ENGINE=InnoDB;
CREATE TABLE order_items (
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
CREATE TABLE outbox (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_type  VARCHAR(64) NOT NULL,
    order_id    BIGINT UNSIGNED NOT NULL,
    payload     TEXT NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
INSERT INTO products (id, sku, name, description, price_cents, currency, stock, status, seller_id)
SELECT seq, CONCAT('bench-', seq), CONCAT('Bench product ', seq), '', 1000 + seq % 1000,
       'EUR', 1000000000, 'active', 1
FROM seq_1_to_10000;
SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_bench@''%'' IDENTIFIED BY ', QUOTE(@bench_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_bench@''%'' IDENTIFIED BY ', QUOTE(@bench_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT ALL ON shop_bench.* TO shop_bench@'%';
