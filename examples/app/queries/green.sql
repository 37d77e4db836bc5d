-- What green (v2) sends.
SELECT id, email_address, plan, created_at FROM customers WHERE id = $1;
INSERT INTO customers (email_address, plan) VALUES (%s, %s) RETURNING id;
UPDATE customers SET email_address = :email, plan = :plan WHERE id = :id;
SELECT id, email_address FROM customers WHERE plan = $1 ORDER BY created_at DESC LIMIT 50;
