-- Carbon: emission factors, hosting facilities, orders and their energy, the certificate registry,
-- allocations of certificate volume to orders, and retirements. Energy and volumes are integer Wh.

-- Grid-average and residual-mix factors as versioned data. A figure never mixes bases.
CREATE TABLE emission_factors (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    version TEXT NOT NULL,
    -- A market zone (CA-QC, NO2) or an ISO 3166-1 alpha-2 country.
    zone TEXT NOT NULL,
    year INTEGER NOT NULL,
    basis TEXT NOT NULL CHECK (basis IN ('lifecycle', 'direct', 'residual_mix')),
    g_per_kwh TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    UNIQUE (dataset, version, zone, year, basis)
);
CREATE INDEX emission_factors_zone ON emission_factors (zone, basis, year);

CREATE TABLE facilities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    market_zone TEXT NOT NULL,
    -- Power usage effectiveness in thousandths (1.08 = 1080).
    pue_permille INTEGER NOT NULL CHECK (pue_permille >= 1000 AND pue_permille <= 3000),
    created_at TIMESTAMP NOT NULL
);

-- The ASIC fleet of a facility: its efficiency is total power over total hashrate.
CREATE TABLE facility_miners (
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    model TEXT NOT NULL,
    -- Per unit: hashrate in thousandths of TH/s and power in W, as the manufacturer lists them.
    hashrate_mths BIGINT NOT NULL CHECK (hashrate_mths > 0),
    power_w BIGINT NOT NULL CHECK (power_w > 0),
    units INTEGER NOT NULL CHECK (units > 0),
    PRIMARY KEY (facility_id, model)
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    -- The platform's order id, unique: re-sending an order is idempotent.
    external_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    market_zone TEXT NOT NULL,
    hashrate_mths BIGINT NOT NULL CHECK (hashrate_mths > 0),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    energy_wh BIGINT NOT NULL CHECK (energy_wh > 0),
    energy_source TEXT NOT NULL CHECK (energy_source IN ('modelled', 'metered')),
    -- The inputs of a modelled figure: fleet power and hashrate, and the PUE, at order time.
    fleet_power_w BIGINT NOT NULL,
    fleet_hashrate_mths BIGINT NOT NULL,
    pue_permille INTEGER NOT NULL,
    matched_wh BIGINT NOT NULL DEFAULT 0,
    hourly_matched_wh BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK (matched_wh >= 0 AND matched_wh <= energy_wh),
    CHECK (hourly_matched_wh >= 0 AND hourly_matched_wh <= matched_wh)
);
CREATE INDEX orders_user ON orders (user_id, starts_at);
CREATE INDEX orders_period ON orders (starts_at, ends_at);

-- The hours of an order that hourly matching touched: the hour's consumption, and what is
-- matched against it (never more).
CREATE TABLE order_hours (
    order_id TEXT NOT NULL REFERENCES orders (id),
    hour_start TIMESTAMP NOT NULL,
    consumption_wh BIGINT NOT NULL CHECK (consumption_wh > 0),
    matched_wh BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, hour_start),
    CHECK (matched_wh >= 0 AND matched_wh <= consumption_wh)
);

CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    scheme TEXT NOT NULL CHECK (scheme IN ('irec', 'go', 'rec', 'hourly')),
    registry TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_id TEXT NOT NULL,
    technology TEXT NOT NULL,
    market_zone TEXT NOT NULL,
    country TEXT NOT NULL,
    generation_start TIMESTAMP NOT NULL,
    generation_end TIMESTAMP NOT NULL,
    volume_wh BIGINT NOT NULL CHECK (volume_wh > 0),
    -- The generator's emission rate the certificate conveys (0 for wind, hydro, solar).
    g_per_kwh TEXT NOT NULL,
    expires_at TIMESTAMP,
    allocated_wh BIGINT NOT NULL DEFAULT 0,
    retired_wh BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'withdrawn', 'expired')),
    -- A correction is a new certificate that names the one it replaces (which is withdrawn).
    supersedes TEXT REFERENCES certificates (id),
    imported_by TEXT NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    UNIQUE (scheme, registry, serial),
    CHECK (generation_end > generation_start),
    CHECK (allocated_wh >= 0 AND retired_wh >= 0 AND allocated_wh + retired_wh <= volume_wh)
);
CREATE INDEX certificates_matching ON certificates (market_zone, status, expires_at);
-- Finds a device's certificates whose periods overlap a new one (the same energy issued twice).
CREATE INDEX certificates_device ON certificates (registry, device_id, generation_start);

CREATE TABLE retirements (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    beneficiary TEXT NOT NULL,
    period_start TIMESTAMP NOT NULL,
    period_end TIMESTAMP NOT NULL,
    -- The external registry's redemption or cancellation statement: used once.
    registry_reference TEXT NOT NULL UNIQUE,
    retired_wh BIGINT NOT NULL CHECK (retired_wh > 0),
    retired_by TEXT NOT NULL,
    retired_at TIMESTAMP NOT NULL,
    CHECK (period_end > period_start)
);

CREATE TABLE allocations (
    id TEXT PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    mode TEXT NOT NULL CHECK (mode IN ('annual', 'hourly')),
    -- Hourly allocations name the UTC hour they cover.
    hour_start TIMESTAMP,
    wh BIGINT NOT NULL CHECK (wh > 0),
    state TEXT NOT NULL CHECK (state IN ('live', 'retired', 'released')),
    retirement_id TEXT REFERENCES retirements (id),
    allocated_by TEXT NOT NULL,
    allocated_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    CHECK ((mode = 'hourly') = (hour_start IS NOT NULL)),
    CHECK ((state = 'retired') = (retirement_id IS NOT NULL))
);
CREATE INDEX allocations_order ON allocations (order_id);
CREATE INDEX allocations_certificate ON allocations (certificate_id, state);

-- Every change to a certificate's volume or status, in order: imports, allocations, releases,
-- retirements, revocations. Never updated.
CREATE TABLE certificate_events (
    seq INTEGER PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    kind TEXT NOT NULL,
    wh BIGINT NOT NULL,
    order_id TEXT,
    allocation_id TEXT,
    actor TEXT NOT NULL,
    reason TEXT,
    occurred_at TIMESTAMP NOT NULL
);
CREATE INDEX certificate_events_certificate ON certificate_events (certificate_id, seq);
CREATE TRIGGER certificate_events_no_update BEFORE UPDATE ON certificate_events
BEGIN
    SELECT RAISE(ABORT, 'certificate_events is append-only: UPDATE refused');
END;
CREATE TRIGGER certificate_events_no_delete BEFORE DELETE ON certificate_events
BEGIN
    SELECT RAISE(ABORT, 'certificate_events is append-only: DELETE refused');
END;

-- A retired certificate volume is final: no update may lower it.
CREATE TRIGGER certificates_retirement_final BEFORE UPDATE OF retired_wh ON certificates
WHEN NEW.retired_wh < OLD.retired_wh
BEGIN
    SELECT RAISE(ABORT, 'retirement cannot be undone');
END;
