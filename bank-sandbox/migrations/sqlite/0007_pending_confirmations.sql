-- A payment's decision changes its status. With `status` in an index, every decision
-- deleted and re-inserted the payment's entry in (customer_id, status): two more leaf pages
-- of the customer's region written per payment, in the log and then in the file. At 5,000
-- payments/s that index was about two of the four or five pages each payment wrote
-- (48.7 KB written per payment at 3,000/s), and the write rate past 180 MB/s was the
-- tail of the ten-minute soak. The only query that looked for a status by customer is the
-- customer's pending confirmations: a partial index holds just those (SQLite skips a partial
-- index when a row is outside its condition before and after an update), so a payment's
-- decision touches no index at all.
DROP INDEX payments_customer_status;
CREATE INDEX payments_pending_confirmations ON payments (customer_id, created_at)
    WHERE status = 'pending_confirmation';
