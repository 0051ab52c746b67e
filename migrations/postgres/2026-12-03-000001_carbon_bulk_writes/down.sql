DROP TRIGGER certificates_never_deleted ON certificates;
DROP TRIGGER orders_never_deleted ON orders;
ALTER TABLE certificate_events ADD FOREIGN KEY (certificate_id) REFERENCES certificates (id);
ALTER TABLE order_hours ADD FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE allocations ADD FOREIGN KEY (certificate_id) REFERENCES certificates (id),
    ADD FOREIGN KEY (order_id) REFERENCES orders (id);
