-- Reserved for the accept cut's migration 0004 (issue 18): migrations must be
-- consecutive, and retention's is 0005. Delete this file when that lands.
SELECT 1;
