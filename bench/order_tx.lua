-- order_tx.lua: sysbench script, the ceilings of the two order rows.  One
-- event = the database work of one placed order with no HTTP, FastCGI, JSON
-- or tokens around it, on the writer node through the HAProxy DB listener
-- like the services.  --shape chooses what an order is:
--   shop: what the services issue (cgi/product/store.c, cgi/order/store.c),
--         two transactions:
--     1. product: CALL reserve_line (schema.sql, copied into shop_bench):
--                 INSERT the reservation, lock the product row (FOR UPDATE),
--                 UPDATE its stock, INSERT the reservation item, in the server
--     2. order:   INSERT the order (confirmed), its item, the outbox event
--     (the sweep's batched reservation confirm, 1/500 of a transaction per
--     order, is left out)
--   min:  the least work a correct order needs, one transaction: lock the
--         product row, UPDATE its stock, INSERT the order and its line.
-- It runs on copies of the tables in database shop_bench (bench/run.py
-- creates them), over --rows products (1: every order on one hot row).
-- Deadlocks (1213) restart the event, as db_tx retries the transaction.
--   sysbench bench/order_tx.lua --shape=shop --rows=10000 --run-id=N ... run

sysbench.cmdline.options = {
   rows = {"products to spread the orders over (1 = one hot row)", 10000},
   run_id = {"distinct per invocation: keeps ids unique", 1},
   shape = {"shop (the services' two transactions) or min (one transaction)", "shop"},
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

local function insert_order(oid, rid, pid, sku, name, price, cur)
   con:query(string.format("INSERT INTO orders (id, user_id, reservation_id, status," ..
      " stock_state, total_cents, currency, created_at, updated_at) VALUES (%d, 1, %d," ..
      " 'confirmed', 'held', %d, '%s', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
      oid, rid, price, cur))
   con:query(string.format("INSERT INTO order_items (order_id, line_no, product_id, sku," ..
      " name, unit_price_cents, quantity, line_total_cents) VALUES (%d, 1, %d, '%s', '%s', %d, 1, %d)",
      oid, pid, sku, name, price, price))
end

function event()
   n = n + 1
   local oid = (sysbench.opt.run_id * 1000 + sysbench.tid) * 100000000 + n
   local pid = sysbench.rand.uniform(1, sysbench.opt.rows)

   if sysbench.opt.shape == "min" then
      con:query("BEGIN")
      local sku, name, price, cur = con:query_row(string.format(
         "SELECT sku, name, price_cents, currency, stock, status FROM products" ..
         " WHERE id = %d FOR UPDATE", pid))
      con:query(string.format("UPDATE products SET stock = stock - 1, version = version + 1," ..
         " updated_at = UTC_TIMESTAMP(3) WHERE id = %d", pid))
      insert_order(oid, oid, pid, sku, name, price, cur)
      con:query("COMMIT")
      return
   end

   con:query("BEGIN")
   con:query(string.format("CALL reserve_line(%d, 1, 60, 1, 0, %d, 1, @sku, @name, @price," ..
      " @cur, @stock, @status)", oid, pid))
   con:query("COMMIT")
   -- the order copies what the reservation answered (in the OUT variables
   -- above; the services get them with the CALL's answer, no extra round
   -- trip, so the bench does not read them either: they are the row's own)
   local sku, name, price, cur = "bench-" .. pid, "Bench product " .. pid, 1000 + pid % 1000, "EUR"

   con:query("BEGIN")
   insert_order(oid, oid, pid, sku, name, price, cur)
   con:query(string.format("INSERT INTO outbox (event_type, order_id, payload, created_at)" ..
      " VALUES ('order.confirmed', %d, '%s', UTC_TIMESTAMP(3))", oid, PAYLOAD))
   con:query("COMMIT")
end
