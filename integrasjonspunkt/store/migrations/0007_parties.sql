-- Issue 18 (metadata per delivered message ≤ 500 B), without rewriting the
-- conversation table: both columns are added, so the migration costs no
-- pass over the rows, and rows written before it read as they always did.
--
-- parties: a conversation's sender and receiver are nearly always the
-- organisation number of sender_identifier and receiver_identifier with the
-- ISO 6523 prefix ('0192:910077473' beside '910077473'), ~28 B per message
-- said twice. Bit 1 set: sender is '0192:' || sender_identifier and the
-- sender column is ''; bit 2 likewise for the receiver. NULL or a clear bit:
-- the column holds the text itself.
ALTER TABLE conversation ADD COLUMN parties INTEGER;

-- status_code: the conversation's latest status coded as message_status's
-- (migration 0006): the term's id and '' in status, or NULL and the text.
ALTER TABLE conversation ADD COLUMN status_code INTEGER;
