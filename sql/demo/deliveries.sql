-- demo.deliveries (pipeline.local.demo_data): {table} is the quoted table name.
CREATE TABLE {table} (
    delivery_id   bigint PRIMARY KEY,
    updated_at    timestamptz NOT NULL,
    distance_km   double precision,
    items         integer,
    courier_type  text,
    weather       text,
    is_rush_hour  boolean,
    minutes_late  double precision
);
