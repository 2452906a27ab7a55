-- order_tx.lua: sysbench script, the ceiling of the two order rows.  One
-- event = the database work of one placed order, as the services issue it
-- (cgi/order/store.c, cgi/product/store.c), with no HTTP, FastCGI, JSON or
-- tokens around it: four transactions on the writer node, through the
-- HAProxy DB listener like the services:
--   1. order:   INSERT the order as pending
--   2. product: INSERT the reservation, lock the product row (FOR UPDATE),
--               UPDATE its stock, INSERT the reservation item
--   3. order:   UPDATE the order to confirmed, INSERT its item, read it back,
--               INSERT the outbox event
--   4. product: lock the reservation, UPDATE it to confirmed
-- It runs on copies of the tables in database shop_bench (bench/run.py
-- creates them), over --rows products (1: every order on one hot row).
-- Deadlocks (1213) restart the event, as db_tx retries the transaction.
--   sysbench bench/order_tx.lua --rows=10000 --run-id=N ... run

sysbench.cmdline.options = {
   rows = {"products to spread the orders over (1 = one hot row)", 10000},
   run_id = {"distinct per invocation: keeps order ids unique", 1},
}

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   n = 0
end

function thread_done()
   con:disconnect()
end

function sysbench.hooks.before_restart_event(err)
   con:query("ROLLBACK")
end

local PAYLOAD = string.rep("x", 320)   -- about one rendered order

function event()
   n = n + 1
   local oid = (sysbench.opt.run_id * 1000 + sysbench.tid) * 100000000 + n
   local pid = sysbench.rand.uniform(1, sysbench.opt.rows)

   con:query("BEGIN")
   con:query(string.format("INSERT INTO orders (id, user_id, status, stock_state," ..
      " created_at, updated_at) VALUES (%d, 1, 'pending', 'none'," ..
      " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", oid))
   con:query("COMMIT")

   con:query("BEGIN")
   con:query(string.format("INSERT INTO reservations (order_id, status, created_at," ..
      " updated_at) VALUES (%d, 'held', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", oid))
   local sku, name, price, cur = con:query_row(string.format(
      "SELECT sku, name, price_cents, currency, stock, status FROM products" ..
      " WHERE id = %d FOR UPDATE", pid))
   con:query(string.format("UPDATE products SET stock = stock - 1, version = version + 1," ..
      " updated_at = UTC_TIMESTAMP(3) WHERE id = %d", pid))
   con:query(string.format("INSERT INTO reservation_items (order_id, product_id, line_no," ..
      " quantity, sku, name, unit_price_cents, currency) VALUES (%d, %d, 0, 1, '%s', '%s', %d, '%s')",
      oid, pid, sku, name, price, cur))
   con:query("COMMIT")

   con:query("BEGIN")
   con:query(string.format("UPDATE orders SET status = 'confirmed', stock_state = 'held'," ..
      " total_cents = %d, currency = '%s', updated_at = UTC_TIMESTAMP(3)" ..
      " WHERE id = %d AND status = 'pending'", price, cur, oid))
   con:query(string.format("INSERT INTO order_items (order_id, line_no, product_id, sku," ..
      " name, unit_price_cents, quantity, line_total_cents) VALUES (%d, 1, %d, '%s', '%s', %d, 1, %d)",
      oid, pid, sku, name, price, price))
   con:query_row(string.format("SELECT id, user_id, status, total_cents, currency," ..
      " created_at, updated_at FROM orders WHERE id = %d", oid))
   con:query(string.format("SELECT line_no, product_id, sku, name, unit_price_cents," ..
      " quantity, line_total_cents FROM order_items WHERE order_id = %d ORDER BY line_no", oid))
   con:query(string.format("INSERT INTO outbox (event_type, order_id, payload, created_at)" ..
      " VALUES ('order.confirmed', %d, '%s', UTC_TIMESTAMP(3))", oid, PAYLOAD))
   con:query("COMMIT")

   con:query("BEGIN")
   con:query_row(string.format("SELECT status FROM reservations WHERE order_id = %d FOR UPDATE", oid))
   con:query(string.format("UPDATE reservations SET status = 'confirmed'," ..
      " updated_at = UTC_TIMESTAMP(3) WHERE order_id = %d", oid))
   con:query("COMMIT")
end
