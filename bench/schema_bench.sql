-- schema_bench.sql: the tables bench/order_tx.lua (the order ceiling) runs on,
-- in their own database so the ceiling never touches the shop's data, with
-- the shop's table definitions (CREATE TABLE ... LIKE).  bench/run.py loads
-- it as root on node 1 and fills products with @rows rows of stock 10^9.
DROP DATABASE IF EXISTS shop_bench;
CREATE DATABASE shop_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop_bench;
-- The shop's own table definitions, copied from the live schema (never
-- retyped here, so the ceiling always runs on what the services run on).
CREATE TABLE products LIKE shop_product.products;
CREATE TABLE reservations LIKE shop_product.reservations;
CREATE TABLE reservation_items LIKE shop_product.reservation_items;
CREATE TABLE orders LIKE shop_order.orders;
CREATE TABLE order_items LIKE shop_order.order_items;
CREATE TABLE outbox LIKE shop_order.outbox;
INSERT INTO products (id, sku, name, description, price_cents, currency, stock, status, seller_id)
SELECT seq, CONCAT('bench-', seq), CONCAT('Bench product ', seq), '', 1000 + seq % 1000,
       'EUR', 1000000000, 'active', 1
FROM seq_1_to_10000;
SET @s = CONCAT('CREATE USER IF NOT EXISTS shop_bench@''%'' IDENTIFIED BY ', QUOTE(@bench_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
SET @s = CONCAT('ALTER USER shop_bench@''%'' IDENTIFIED BY ', QUOTE(@bench_pw));
PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
GRANT ALL ON shop_bench.* TO shop_bench@'%';
