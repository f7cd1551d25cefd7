-- migrate: foreign_keys off
-- The message and conversation ids as 16 bytes instead of 36 characters
-- (issue 18: metadata per delivered message ≤ 500 B): each is in the row
-- and in an index, ~80 B of a delivered message's ~550. A canonical
-- lowercase UUID becomes a BLOB; any other id stays TEXT, so the columns
-- are ANY (store/ids.go encodes and decodes). On SQLite only: PostgreSQL
-- keeps them as text (0008_ids.pg.sql).
--
-- SQLite changes a column's type only by copying the table. The runner
-- turns foreign keys off and legacy_alter_table on for this migration
-- (store.go migrateOne), so that renaming the old table leaves
-- message_status's reference to conversation by name and dropping it does
-- not cascade, and checks the foreign keys before the commit. All of it is one transaction: a kill leaves the old
-- table whole.
ALTER TABLE conversation RENAME TO conversation_0007;

CREATE TABLE conversation (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id                ANY     NOT NULL,
    conversation_id           ANY     NOT NULL,
    direction                 TEXT    NOT NULL CHECK (direction IN ('OUTGOING', 'INCOMING')),
    sender                    TEXT    NOT NULL DEFAULT '',
    sender_identifier         TEXT    NOT NULL DEFAULT '',
    receiver                  TEXT    NOT NULL DEFAULT '',
    receiver_identifier       TEXT    NOT NULL DEFAULT '',
    process_identifier        TEXT    NOT NULL DEFAULT '',
    document_identifier       TEXT    NOT NULL DEFAULT '',
    message_reference         TEXT    NOT NULL DEFAULT '',
    message_title             TEXT    NOT NULL DEFAULT '',
    service_identifier        TEXT    NOT NULL DEFAULT '',
    external_system_reference TEXT,
    status                    TEXT    NOT NULL,
    finished                  INTEGER NOT NULL DEFAULT 0,
    pollable                  INTEGER NOT NULL DEFAULT 0,
    expiry                    INTEGER,
    created_at                INTEGER NOT NULL,
    last_update               INTEGER NOT NULL,
    client                    TEXT    NOT NULL DEFAULT '',
    process_code              INTEGER,
    document_code             INTEGER,
    client_code               INTEGER,
    parties                   INTEGER,
    status_code               INTEGER,
    UNIQUE (message_id, direction)
) STRICT;

INSERT INTO conversation (id, message_id, conversation_id, direction, sender, sender_identifier, receiver,
    receiver_identifier, process_identifier, document_identifier, message_reference, message_title,
    service_identifier, external_system_reference, status, finished, pollable, expiry, created_at, last_update,
    client, process_code, document_code, client_code, parties, status_code)
SELECT id, CASE WHEN message_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]' THEN unhex(replace(message_id, '-', '')) ELSE message_id END,
    CASE WHEN conversation_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]' THEN unhex(replace(conversation_id, '-', '')) ELSE conversation_id END,
    direction, sender, sender_identifier, receiver,
    receiver_identifier, process_identifier, document_identifier, message_reference, message_title,
    service_identifier, external_system_reference, status, finished, pollable, expiry, created_at, last_update,
    client, process_code, document_code, client_code, parties, status_code
FROM conversation_0007 ORDER BY id;

-- AUTOINCREMENT: ids of deleted conversations are not handed out again.
DELETE FROM sqlite_sequence WHERE name = 'conversation';
UPDATE sqlite_sequence SET name = 'conversation' WHERE name = 'conversation_0007';

DROP TABLE conversation_0007;

CREATE INDEX conversation_unfinished ON conversation (direction, finished) WHERE finished = 0;
CREATE INDEX conversation_conversation_id ON conversation (conversation_id);
CREATE INDEX conversation_last_update ON conversation (last_update);
CREATE INDEX conversation_receiver ON conversation (receiver_identifier, last_update);
CREATE INDEX conversation_pollable ON conversation (last_update) WHERE pollable = 1;
