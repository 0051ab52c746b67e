DROP TRIGGER certificates_never_deleted;
DROP TRIGGER orders_never_deleted;
