-- The one definition of "a pricing rule matches a stone", used by consolidation,
-- re-pricing and previews. An empty match field matches anything.
create function pricing_rule_matches(
    r pricing_rules,
    p_feed text,
    p_carats numeric,
    p_shape text,
    p_lab_grown boolean,
    p_feed_price_cents bigint
) returns boolean
language sql immutable parallel safe as $$
    select r.active
       and (r.carat_min is null or p_carats >= r.carat_min)
       and (r.carat_max is null or p_carats <= r.carat_max)
       and (r.shapes is null or cardinality(r.shapes) = 0 or p_shape = any (r.shapes))
       and (r.lab_grown is null or r.lab_grown = p_lab_grown)
       and (r.feed is null or r.feed = p_feed)
       and (r.feed_price_min_cents is null or p_feed_price_cents >= r.feed_price_min_cents)
       and (r.feed_price_max_cents is null or p_feed_price_cents <= r.feed_price_max_cents)
$$;
