-- A matching run writes allocations, matched hours and certificate events by the hundred
-- thousand, and PostgreSQL's per-row foreign-key checks cost more than the rows themselves (an
-- hourly run of 1,000 orders × 30 days spent most of its time in them). The one writer of these
-- rows names only orders and certificates it has just read in the same transaction, and neither
-- is ever deleted (refused below), so the references hold without a check per row. SQLite keeps
-- its foreign keys: checked in-process, they cost it about 5 %.
ALTER TABLE allocations DROP CONSTRAINT allocations_certificate_id_fkey,
    DROP CONSTRAINT allocations_order_id_fkey;
ALTER TABLE order_hours DROP CONSTRAINT order_hours_order_id_fkey;
ALTER TABLE certificate_events DROP CONSTRAINT certificate_events_certificate_id_fkey;
CREATE TRIGGER orders_never_deleted BEFORE DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION hashgate_reject_change();
CREATE TRIGGER certificates_never_deleted BEFORE DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION hashgate_reject_change();
