-- Orders and certificates are never deleted: allocations, matched hours and events refer to
-- them (PostgreSQL drops those foreign keys for bulk writes and relies on this; SQLite keeps
-- its foreign keys and refuses the same deletes).
CREATE TRIGGER orders_never_deleted BEFORE DELETE ON orders
BEGIN
    SELECT RAISE(ABORT, 'orders are never deleted: DELETE refused');
END;
CREATE TRIGGER certificates_never_deleted BEFORE DELETE ON certificates
BEGIN
    SELECT RAISE(ABORT, 'certificates are never deleted: DELETE refused');
END;
