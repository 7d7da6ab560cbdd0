INSERT INTO items (name) VALUES ('wait'), ('migrate'), ('secret'), ('config'), ('notify');
