-- The local API's records (local-api.md §5–§9). Times are Unix milliseconds (UTC).

-- The User-Agent product token of the client that created the message, for
-- the central log's client field (operations.md §5.3).
ALTER TABLE conversation ADD COLUMN client TEXT NOT NULL DEFAULT '';

CREATE INDEX conversation_message_id ON conversation (message_id);
CREATE INDEX conversation_last_update ON conversation (last_update);
CREATE INDEX message_status_status ON message_status (status);

-- The outgoing store (local-api.md §5): a message lives here from creation
-- until its channel took it (or it failed for good). state is CREATED until
-- E4/E5 queued it, then QUEUED. Deleting a conversation (E15) does not touch
-- these rows, so there is no foreign key to conversation.
CREATE TABLE outgoing_message (
    message_id          TEXT    PRIMARY KEY,
    conversation_id     TEXT    NOT NULL,
    process_identifier  TEXT    NOT NULL,
    sender_identifier   TEXT    NOT NULL,
    receiver_identifier TEXT    NOT NULL,
    service_identifier  TEXT    NOT NULL,
    document_type       TEXT    NOT NULL,
    sbd                 BLOB    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('CREATED', 'QUEUED')),
    expiry              INTEGER NOT NULL,
    last_updated        INTEGER NOT NULL
) STRICT;

-- One uploaded file of an outgoing message. file names the encrypted
-- payload file under <data>/payload.
CREATE TABLE attachment (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT    NOT NULL REFERENCES outgoing_message (message_id) ON DELETE CASCADE,
    doc_no     INTEGER NOT NULL,
    filename   TEXT    NOT NULL,
    title      TEXT    NOT NULL DEFAULT '',
    mime_type  TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    is_primary INTEGER NOT NULL DEFAULT 0,
    file       TEXT    NOT NULL,
    UNIQUE (message_id, filename)
) STRICT;

-- The incoming queue (local-api.md §6). package is the encrypted ASiC-E file,
-- '' for receipts. A message is locked while locked_until is in the future.
CREATE TABLE incoming_message (
    message_id          TEXT    PRIMARY KEY,
    conversation_id     TEXT    NOT NULL,
    process_identifier  TEXT    NOT NULL,
    sender_identifier   TEXT    NOT NULL,
    receiver_identifier TEXT    NOT NULL,
    service_identifier  TEXT    NOT NULL,
    document_type       TEXT    NOT NULL,
    sbd                 BLOB    NOT NULL,
    package             TEXT    NOT NULL DEFAULT '',
    locked_until        INTEGER NOT NULL DEFAULT 0,
    expiry              INTEGER NOT NULL,
    last_updated        INTEGER NOT NULL
) STRICT;

CREATE INDEX incoming_message_order ON incoming_message (last_updated);

-- The status queue of E21/E22 (local-api.md §8.4): FIFO by status id.
CREATE TABLE status_queue (
    status_id INTEGER PRIMARY KEY REFERENCES message_status (id) ON DELETE CASCADE
) STRICT;

-- Internal status messages (local-api.md §12.10) owed to a sender's
-- integration point: written in the transaction of the status they report,
-- drained by the channel that carries them back (DPO, DPE).
CREATE TABLE status_reply (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id         TEXT    NOT NULL,
    conversation_id    TEXT    NOT NULL,
    service_identifier TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    sbd                BLOB    NOT NULL,
    created_at         INTEGER NOT NULL
) STRICT;

-- Webhook subscriptions (local-api.md §9): persistent across restarts.
CREATE TABLE subscription (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    push_endpoint TEXT NOT NULL,
    resource      TEXT NOT NULL,
    event         TEXT NOT NULL,
    filter        TEXT NOT NULL DEFAULT ''
) STRICT;
