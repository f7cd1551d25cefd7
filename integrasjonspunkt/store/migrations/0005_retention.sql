-- Retention (operations.md §3.2). Times are Unix milliseconds (UTC).

-- Outgoing payloads kept after their message left the outgoing store, for
-- efm.retention.outgoing-payload (a trial): the SBD and the sealed files as
-- they were sent, until delete_after. The outgoing store itself no longer
-- lists the message, so the local API answers as without the key.
CREATE TABLE kept_payload (
    message_id   TEXT    PRIMARY KEY,
    sbd          BLOB    NOT NULL,
    delete_after INTEGER NOT NULL
) STRICT;

CREATE INDEX kept_payload_delete_after ON kept_payload (delete_after);

CREATE TABLE kept_attachment (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT    NOT NULL REFERENCES kept_payload (message_id) ON DELETE CASCADE,
    doc_no     INTEGER NOT NULL,
    filename   TEXT    NOT NULL,
    mime_type  TEXT    NOT NULL,
    file       TEXT    NOT NULL,
    data       BLOB
) STRICT;

CREATE INDEX kept_attachment_message ON kept_attachment (message_id);

-- One row per run of the daily retention job: what it deleted, for the
-- status page and for the next daemon of a group to know it ran.
CREATE TABLE retention_run (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    conversations INTEGER NOT NULL,
    statuses      INTEGER NOT NULL,
    incoming      INTEGER NOT NULL,
    payloads      INTEGER NOT NULL,
    files         INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    error         TEXT    NOT NULL DEFAULT ''
) STRICT;

-- conversation_message_id repeated what UNIQUE (message_id, direction)
-- already indexes (message_id first): every lookup by message id uses the
-- unique index alone, and each message carried ~55 bytes for nothing.
DROP INDEX IF EXISTS conversation_message_id;
