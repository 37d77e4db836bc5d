-- What blue (v1) sends: one query per statement, parameters as $1 / %s / :name.
SELECT id, email, nickname, created_at FROM customers WHERE id = $1;
INSERT INTO customers (email, nickname) VALUES (%s, %s) RETURNING id;
UPDATE customers SET email = :email, nickname = :nickname WHERE id = :id;
