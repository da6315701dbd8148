-- `demo --drift`: the customers who had no outcome at run 1 get one, from the process that
-- made the others (pipeline.local.drift_demo).
SELECT setseed(0.42);
UPDATE demo.customers SET churned = random() < 1 / (1 + exp(-(
    -1.3 - 0.045 * coalesce(tenure_months, 36) + 0.012 * (coalesce(monthly_charges, 80) - 80)
    + 0.45 * coalesce(support_calls, 1) + 0.05 * coalesce(last_login_days, 9)
    + CASE plan WHEN 'basic' THEN 0.5 WHEN 'premium' THEN -0.4 ELSE 0 END
    + CASE WHEN payment_method = 'invoice' THEN 0.6 ELSE 0 END
    - 0.5 * coalesce(autopay::int, 0) + 0.3 * coalesce(is_senior::int, 0))))
WHERE churned IS NULL;
