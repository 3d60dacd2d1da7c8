-- Keep raw payloads out of line, so that a raw row is about 200 bytes.
-- Consolidation rewrites each raw row it marks done or failed; with the
-- payload in the TOAST table, that rewrite copies and logs a pointer instead
-- of the whole payload. Applies to rows written after this migration.
alter table raw_diamonds_nivoda set (toast_tuple_target = 128);
