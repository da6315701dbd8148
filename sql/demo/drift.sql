-- `demo --drift`: two features shift and an unseen payment method appears, %(unseen)s
-- (pipeline.local.drift_demo).
UPDATE demo.customers SET
    monthly_charges = monthly_charges * 1.6 + 25,
    last_login_days = last_login_days * 3 + 10,
    payment_method = CASE WHEN customer_id %% 8 = 0 THEN %(unseen)s ELSE payment_method END;
