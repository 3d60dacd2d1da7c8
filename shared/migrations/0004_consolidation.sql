-- Move large raw payloads out of line, so that their raw row stays small.
-- PostgreSQL toasts a row only when it exceeds about 2 KB (TOAST_TUPLE_THRESHOLD,
-- fixed when PostgreSQL is built). Such a row then has its payload compressed
-- and moved out until the row is near 128 bytes, instead of the default of
-- about 2 KB. Consolidation rewrites each raw row it marks done or failed, and
-- for a toasted payload that rewrite copies a pointer instead of the payload.
-- NOTE: rows under the threshold keep their payload inline. The simulator's
-- payloads average 1.7 KB in jsonb, so nearly all of them stay inline.
-- Applies to rows written after this migration.
alter table raw_diamonds_nivoda set (toast_tuple_target = 128);
