-- The base schema. Times are Unix milliseconds (UTC). Migrations are additive
-- within a product major (operations.md §4.4, rules M1–M3).

CREATE TABLE installation (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per message and direction (local-api.md §7). For an outgoing
-- message the row exists once the message is accepted for sending; status is
-- the latest of its message_status rows, kept here so lists need no join.
CREATE TABLE conversation (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id                TEXT    NOT NULL,
    conversation_id           TEXT    NOT NULL,
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
    UNIQUE (message_id, direction)
) STRICT;

CREATE INDEX conversation_unfinished ON conversation (direction, finished) WHERE finished = 0;
CREATE INDEX conversation_conversation_id ON conversation (conversation_id);

CREATE TABLE message_status (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    conv_id     INTEGER NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    status      TEXT    NOT NULL,
    description TEXT,
    raw_receipt TEXT,
    last_update INTEGER NOT NULL
) STRICT;

CREATE INDEX message_status_conv ON message_status (conv_id);

-- The transactional outbox of the central log (operations.md §5.4): written in
-- the same transaction as the status row it reports.
CREATE TABLE event_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE event_rejected (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    rejected_at INTEGER NOT NULL,
    reason      TEXT    NOT NULL
) STRICT;
