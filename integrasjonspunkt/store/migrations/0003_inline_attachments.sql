-- Attachments of at most one payload chunk (64 KiB) are kept here, sealed as
-- a payload file would be, instead of in a file of their own: creating a file
-- costs more than the rest of accepting a small message. file is '' then.
ALTER TABLE attachment ADD COLUMN data BLOB;
