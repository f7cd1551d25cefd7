-- PostgreSQL keeps the message and conversation ids as text: 0008_ids.sql
-- is SQLite's alone (store/ids.go).
SELECT 1;
