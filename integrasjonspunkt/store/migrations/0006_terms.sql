-- Repeated long texts as small integer codes (issue 18: metadata per
-- delivered message ≤ 500 B). A delivered message's conversation row carried
-- its process and document identifiers (~95 B of URNs, the same few in every
-- row) and its four status rows each their status name twice, in the row and
-- in the status index. Now each such column has a code column beside it:
-- when the code is set the text column is '' and term.value is the text;
-- when it is NULL the text column holds the text itself (a value the store
-- had no code for when it wrote the row). The store decodes with
-- COALESCE((SELECT value FROM term WHERE id = code), text), so every answer
-- reads as before.
--
-- Terms are only ever added, never changed or removed: a code once written
-- means the same text for good. The statuses are seeded here, and a status
-- outside this list stays text, so a status filter is one index range. The
-- other columns' codes are added by the daemon as it meets new texts
-- (store/terms.go).
CREATE TABLE term (
    id    INTEGER PRIMARY KEY,
    value TEXT    NOT NULL UNIQUE
) STRICT;

INSERT INTO term (id, value) VALUES
    (1, 'OPPRETTET'), (2, 'SENDT'), (3, 'MOTTATT'), (4, 'LEVERT'), (5, 'LEST'), (6, 'FEIL'),
    (7, 'ANNET'), (8, 'INNKOMMENDE_MOTTATT'), (9, 'INNKOMMENDE_LEVERT'), (10, 'LEVETID_UTLOPT'),
    (11, 'KLAR_FOR_MOTTAK');

-- The texts already in the store get codes too, so an upgraded store's
-- later messages are as small as a new store's.
INSERT INTO term (id, value)
SELECT 11 + ROW_NUMBER() OVER (ORDER BY v), v FROM (
    SELECT process_identifier AS v FROM conversation
    UNION SELECT document_identifier FROM conversation
    UNION SELECT client FROM conversation
) x WHERE v != '' AND v NOT IN (SELECT value FROM term);

ALTER TABLE conversation ADD COLUMN process_code INTEGER;
ALTER TABLE conversation ADD COLUMN document_code INTEGER;
ALTER TABLE conversation ADD COLUMN client_code INTEGER;

-- One pass: SET reads the row as it was.
UPDATE conversation SET
    process_code = (SELECT id FROM term WHERE value = process_identifier),
    document_code = (SELECT id FROM term WHERE value = document_identifier),
    client_code = (SELECT id FROM term WHERE value = client),
    process_identifier = CASE WHEN process_identifier IN (SELECT value FROM term) THEN '' ELSE process_identifier END,
    document_identifier = CASE WHEN document_identifier IN (SELECT value FROM term) THEN '' ELSE document_identifier END,
    client = CASE WHEN client IN (SELECT value FROM term) THEN '' ELSE client END;

-- The status index is rebuilt on the codes: dropped first, so the update
-- below does not maintain it row by row.
DROP INDEX IF EXISTS message_status_status_time;
ALTER TABLE message_status ADD COLUMN status_code INTEGER;
UPDATE message_status SET status_code = (SELECT id FROM term WHERE value = status), status = ''
    WHERE status IN (SELECT value FROM term WHERE id <= 11);
CREATE INDEX message_status_code_time ON message_status (status_code, status, last_update);
