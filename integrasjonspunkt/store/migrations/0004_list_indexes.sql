-- Lists that stay fast as the store grows (issue 18): a page reads only the
-- index range it shows.

-- E19's status and time window: the status page of one status in a window.
-- It replaces the index on status alone, its prefix.
DROP INDEX IF EXISTS message_status_status;
CREATE INDEX IF NOT EXISTS message_status_status_time ON message_status (status, last_update);

-- E13 by receiver, newest first (the default sort).
CREATE INDEX IF NOT EXISTS conversation_receiver ON conversation (receiver_identifier, last_update);

-- The conversation queue (E14) lists only pollable conversations: few, and
-- none of them on the accept path.
CREATE INDEX IF NOT EXISTS conversation_pollable ON conversation (last_update) WHERE pollable = 1;

-- message_id alone is the prefix of UNIQUE (message_id, direction).
DROP INDEX IF EXISTS conversation_message_id;
