-- demo.customers (pipeline.local.demo_data): {table} is the quoted table name.
CREATE TABLE {table} (
    customer_id     bigint PRIMARY KEY,
    updated_at      timestamptz NOT NULL,
    tenure_months   integer,
    monthly_charges double precision,
    support_calls   integer,
    last_login_days integer,
    plan            text,
    region          text,
    payment_method  text,
    is_senior       boolean,
    has_partner     boolean,
    autopay         boolean,
    churned         boolean
);
