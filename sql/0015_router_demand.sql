-- Demand the routers report (inventory/demand.h): per router instance and
-- route key (a model, or model/adapter), the requests waiting for a replica
-- and those being answered, as of reported_at. Soft state: a report
-- replaces its router's rows, a row older than the TTL is not counted, and
-- rows of routers gone for an hour are removed by later reports. Owned by
-- inventory/.
CREATE TABLE router_demand (
    router      text NOT NULL CHECK (length(router) BETWEEN 1 AND 200),
    model       text NOT NULL CHECK (length(model) BETWEEN 1 AND 600),
    waiting     integer NOT NULL CHECK (waiting >= 0),
    in_flight   integer NOT NULL CHECK (in_flight >= 0),
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (router, model)
);
CREATE INDEX router_demand_reported_at ON router_demand (reported_at);
