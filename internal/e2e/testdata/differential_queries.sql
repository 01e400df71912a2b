-- Queries of the differential test (differential_test.go): each runs through pgshard (database diff, three
-- shards) and on the reference (one plain database holding the same rows), in the simple protocol and in the
-- extended protocol with text and with binary results.
--
-- Header: -- name: NAME | want: ok|SQLSTATE | compare: MODE [| args: ...] [| delim: D] [| numvalue]
--   want: ok      results identical to the reference's
--   want: 0A000   pgshard refuses (a shape it cannot answer exactly); the reference is not asked
--   want: XXXXX   another SQLSTATE: both sides fail with it
--   compare: ordered           rows identical, in order (the ORDER BY is total)
--            sortkeys(c, ...)  ORDER BY with ties: the sequence of sort-key columns c matches (numeric by
--                              value), and the rows match as a multiset
--            set               no ORDER BY: the rows match as a multiset
--            elements(c, ...)  string_agg / array_agg without ORDER BY inside: columns c compared after
--                              sorting their elements (string_agg split at delim, "," by default), rows as a set
--            rowcount          LIMIT without ORDER BY: which rows is not determined, only how many
--   numvalue      numeric values compared by value (1.5 = 1.50): where Postgres itself returns either of
--                 equal values of different scales (DISTINCT n, GROUP BY n, min(n) of a group)
--   -- after: SQL  (writes) runs after the statement in the same transaction and is compared as a set;
--                 the transaction is rolled back
--
-- Tables: items (k bigint key; cat, i2, i4, i8, f4, f8, n, t, v, b, d, ts, tstz, u; NULLs everywhere, many
-- ties), notes (name text key; item_k, score, body, f8s with NaN and infinities, ns with NaN), hot (k bigint
-- key, every row on shard 1; grp, x, amount), empty_items (no rows), categories (replicated: id, name,
-- weight). Text columns use the C collation.

---------------------------------------------------------------- filters and routing

-- name: scan_items | want: ok | compare: set
SELECT * FROM items;

-- name: scan_notes | want: ok | compare: set
SELECT * FROM notes;

-- name: scan_hot | want: ok | compare: set
SELECT * FROM hot;

-- name: scan_empty | want: ok | compare: set
SELECT * FROM empty_items;

-- name: scan_categories | want: ok | compare: set
SELECT * FROM categories;

-- name: key_eq | want: ok | compare: set
SELECT * FROM items WHERE k = 42;

-- name: key_eq_max | want: ok | compare: set
SELECT * FROM items WHERE k = 9223372036854775807;

-- name: key_eq_min | want: ok | compare: set
SELECT k, t, n FROM items WHERE k = -9223372036854775808;

-- name: key_eq_param | want: ok | compare: set | args: 1000
SELECT * FROM items WHERE k = $1;

-- name: key_eq_missing | want: ok | compare: set
SELECT * FROM items WHERE k = 31337;

-- name: key_in | want: ok | compare: set
SELECT * FROM items WHERE k IN (0, 1, -1, 7, 42, 1000, 123456789);

-- name: key_in_params | want: ok | compare: set | args: 0, 7, -987654321
SELECT k, i4, t FROM items WHERE k IN ($1, $2, $3);

-- name: key_any_array | want: ok | compare: set
SELECT k, b FROM items WHERE k = ANY('{1,42,1000}'::bigint[]);

-- name: key_range | want: ok | compare: set
SELECT k, i2 FROM items WHERE k BETWEEN -2500 AND 2500;

-- name: key_or_column | want: ok | compare: set
SELECT k, i4 FROM items WHERE k = 42 OR i4 = 3;

-- name: filter_i4 | want: ok | compare: set
SELECT k, i4 FROM items WHERE i4 > 10;

-- name: filter_text_eq | want: ok | compare: set
SELECT k, t FROM items WHERE t = 'apple';

-- name: filter_text_empty | want: ok | compare: set
SELECT k, t, v FROM items WHERE t = '' OR v = '';

-- name: filter_text_null | want: ok | compare: set
SELECT k FROM items WHERE t IS NULL;

-- name: filter_text_gt_c | want: ok | compare: set
SELECT k, t FROM items WHERE t > 'a' AND t < 'b';

-- name: filter_like | want: ok | compare: set
SELECT k, v FROM items WHERE v LIKE 'a%';

-- name: filter_bool | want: ok | compare: set
SELECT k FROM items WHERE b;

-- name: filter_bool_not | want: ok | compare: set
SELECT k FROM items WHERE NOT b;

-- name: filter_date | want: ok | compare: set
SELECT k, d FROM items WHERE d >= '2024-06-01' AND d < '2024-07-01';

-- name: filter_ts | want: ok | compare: set
SELECT k, ts FROM items WHERE ts > '2025-06-01';

-- name: filter_tstz | want: ok | compare: set
SELECT k, tstz FROM items WHERE tstz <= '2024-03-01 00:00:00+00';

-- name: filter_uuid | want: ok | compare: set
SELECT k, u FROM items WHERE u > '80000000-0000-0000-0000-000000000000';

-- name: filter_numeric | want: ok | compare: set
SELECT k, n FROM items WHERE n = 1.5;

-- name: filter_floats | want: ok | compare: set
SELECT k, f4, f8 FROM items WHERE f8 < 0 AND f4 > 0;

-- name: filter_param_text | want: ok | compare: set | args: 'Apple'
SELECT k, t FROM items WHERE t = $1;

-- name: notes_key_eq | want: ok | compare: set
SELECT * FROM notes WHERE name = 'apple';

-- name: notes_key_empty | want: ok | compare: set
SELECT * FROM notes WHERE name = '';

-- name: notes_key_param | want: ok | compare: set | args: 'x y'
SELECT * FROM notes WHERE name = $1;

-- name: notes_key_in | want: ok | compare: set
SELECT name, score FROM notes WHERE name IN ('a', 'A', 'Z', '10', '9', 'Apple');

-- name: notes_nan | want: ok | compare: set
SELECT name, f8s, ns FROM notes WHERE f8s = 'NaN' OR ns = 'NaN' OR f8s = 'Infinity';

-- name: hot_filter | want: ok | compare: set
SELECT k, x FROM hot WHERE x > 0;

-- name: union_all | want: ok | compare: set
SELECT k FROM items WHERE i2 = 1 UNION ALL SELECT k FROM hot;

-- name: derived_plain | want: ok | compare: set
SELECT s.k, s.t FROM (SELECT k, t FROM items WHERE i4 < 0) s WHERE s.t <> '';

---------------------------------------------------------------- joins

-- name: join_categories | want: ok | compare: set
SELECT i.k, i.t, c.name FROM items i JOIN categories c ON c.id = i.cat;

-- name: left_join_categories | want: ok | compare: set
SELECT i.k, c.name, c.weight FROM items i LEFT JOIN categories c ON c.id = i.cat;

-- name: join_categories_filter | want: ok | compare: set
SELECT i.k, i.n FROM items i JOIN categories c ON c.id = i.cat WHERE c.name = 'Books';

-- name: join_categories_key | want: ok | compare: set
SELECT i.k, c.name FROM items i JOIN categories c ON c.id = i.cat WHERE i.k = 42;

-- name: join_hot_on_key | want: ok | compare: set
SELECT i.k, i.t, h.grp FROM items i JOIN hot h ON h.k = i.k;

-- name: left_join_hot_on_key | want: ok | compare: set
SELECT i.k, h.x FROM items i LEFT JOIN hot h ON h.k = i.k WHERE i.i2 = 0;

-- name: self_join_on_key | want: ok | compare: set
SELECT a.k, b.t FROM items a JOIN items b ON a.k = b.k WHERE a.i2 = 1;

-- name: join_using_key | want: ok | compare: set
SELECT k, i.i4, h.x FROM items i JOIN hot h USING (k);

-- name: notes_self_join | want: ok | compare: set
SELECT n.name, m.score FROM notes n JOIN notes m ON m.name = n.name WHERE n.score > 5;

-- name: correlated_count_on_key | want: ok | compare: set
SELECT i.k, (SELECT count(*) FROM hot h WHERE h.k = i.k) AS hits FROM items i WHERE i.i2 = 2;

-- name: exists_on_key | want: ok | compare: set
SELECT i.k FROM items i WHERE EXISTS (SELECT 1 FROM hot h WHERE h.k = i.k);

-- name: in_subquery_on_key | want: ok | compare: set
SELECT k, t FROM items WHERE k IN (SELECT k FROM hot WHERE x > 0);

-- name: join_notes_not_on_key | want: ok | compare: set
SELECT n.name, i.k FROM notes n JOIN items i ON i.k = n.item_k;

-- name: join_notes_text_col | want: ok | compare: set
SELECT i.k, n.name FROM items i JOIN notes n ON n.name = i.t;

-- name: join_hot_not_on_key | want: ok | compare: set
SELECT i.k, h.k FROM items i JOIN hot h ON h.x = i.i4;

-- name: cross_join_sharded | want: ok | compare: set
SELECT i.k, e.k FROM items i, hot e WHERE i.i2 = 3;

-- name: count_join_not_on_key | want: ok | compare: set
SELECT count(*) FROM notes n JOIN items i ON i.k = n.item_k;

-- name: uncorrelated_scalar_subquery | want: ok | compare: set
SELECT k FROM items WHERE i4 > (SELECT avg(i4) FROM items);

-- name: replicated_rows_filtered_by_sharded | want: ok | compare: set
SELECT * FROM categories WHERE id IN (SELECT cat FROM items);

---------------------------------------------------------------- ORDER BY: every type, directions, NULLs

-- name: order_k | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY k;

-- name: order_k_desc | want: ok | compare: ordered
SELECT k, i4 FROM items ORDER BY k DESC;

-- name: order_i2 | want: ok | compare: ordered
SELECT k, i2 FROM items ORDER BY i2, k;

-- name: order_i2_desc_nulls_last | want: ok | compare: ordered
SELECT k, i2 FROM items ORDER BY i2 DESC NULLS LAST, k;

-- name: order_i2_ties | want: ok | compare: sortkeys(2)
SELECT k, i2 FROM items ORDER BY i2;

-- name: order_i4_nulls_first | want: ok | compare: ordered
SELECT k, i4 FROM items ORDER BY i4 NULLS FIRST, k DESC;

-- name: order_i4_desc | want: ok | compare: sortkeys(2)
SELECT k, i4 FROM items ORDER BY i4 DESC;

-- name: order_i8 | want: ok | compare: ordered
SELECT k, i8 FROM items ORDER BY i8, k;

-- name: order_i8_desc_nulls_last | want: ok | compare: ordered
SELECT i8, k FROM items ORDER BY i8 DESC NULLS LAST, k DESC;

-- name: order_f4 | want: ok | compare: ordered
SELECT k, f4 FROM items ORDER BY f4, k;

-- name: order_f4_desc | want: ok | compare: sortkeys(2)
SELECT k, f4 FROM items ORDER BY f4 DESC;

-- name: order_f8 | want: ok | compare: ordered
SELECT k, f8 FROM items ORDER BY f8 NULLS FIRST, k;

-- name: order_f8_desc_nulls_last | want: ok | compare: ordered
SELECT k, f8 FROM items ORDER BY f8 DESC NULLS LAST, k;

-- name: order_numeric | want: ok | compare: ordered
SELECT k, n FROM items ORDER BY n, k;

-- name: order_numeric_ties | want: ok | compare: sortkeys(2)
SELECT k, n FROM items ORDER BY n DESC;

-- name: order_text | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY t, k;

-- name: order_text_desc_nulls_last | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY t DESC NULLS LAST, k;

-- name: order_text_ties | want: ok | compare: sortkeys(2)
SELECT k, t FROM items ORDER BY t;

-- name: order_text_collate_c | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY t COLLATE "C", k;

-- name: order_varchar | want: ok | compare: ordered
SELECT k, v FROM items ORDER BY v NULLS FIRST, k;

-- name: order_varchar_desc | want: ok | compare: sortkeys(2)
SELECT k, v FROM items ORDER BY v DESC;

-- name: order_bool | want: ok | compare: ordered
SELECT k, b FROM items ORDER BY b, k;

-- name: order_bool_desc_nulls_last | want: ok | compare: sortkeys(2)
SELECT k, b FROM items ORDER BY b DESC NULLS LAST;

-- name: order_date | want: ok | compare: ordered
SELECT k, d FROM items ORDER BY d, k;

-- name: order_date_desc | want: ok | compare: ordered
SELECT k, d FROM items ORDER BY d DESC, k;

-- name: order_ts | want: ok | compare: ordered
SELECT k, ts FROM items ORDER BY ts, k;

-- name: order_ts_desc_nulls_last | want: ok | compare: sortkeys(2)
SELECT k, ts FROM items ORDER BY ts DESC NULLS LAST;

-- name: order_tstz | want: ok | compare: ordered
SELECT k, tstz FROM items ORDER BY tstz, k;

-- name: order_tstz_desc | want: ok | compare: ordered
SELECT k, tstz FROM items ORDER BY tstz DESC NULLS FIRST, k DESC;

-- name: order_uuid | want: ok | compare: ordered
SELECT k, u FROM items ORDER BY u, k;

-- name: order_uuid_desc | want: ok | compare: sortkeys(2)
SELECT k, u FROM items ORDER BY u DESC;

-- name: order_several_keys | want: ok | compare: ordered
SELECT i2, t, k FROM items ORDER BY i2, t DESC, k;

-- name: order_bool_date_nulls | want: ok | compare: ordered
SELECT b, d, k FROM items ORDER BY b DESC, d NULLS FIRST, k;

-- name: order_several_keys_ties | want: ok | compare: sortkeys(1, 2)
SELECT cat, i2, k FROM items ORDER BY cat NULLS FIRST, i2 DESC;

-- name: order_only_key_columns | want: ok | compare: ordered
SELECT i2, t FROM items ORDER BY i2, t;

-- name: order_by_position | want: ok | compare: ordered
SELECT t, k FROM items ORDER BY 1, 2;

-- name: order_by_position_desc | want: ok | compare: ordered
SELECT k, i4 FROM items ORDER BY 2 DESC, 1;

-- name: order_by_alias_expr | want: ok | compare: ordered
SELECT k, i4::bigint * 2 AS dbl FROM items ORDER BY dbl, k;

-- name: order_by_expr_in_list | want: ok | compare: ordered
SELECT k, lower(t) FROM items ORDER BY lower(t) NULLS FIRST, k;

-- name: order_by_expr_position | want: ok | compare: ordered
SELECT k, i4::bigint + i2 AS s FROM items ORDER BY 2 DESC, 1;

-- name: order_by_hidden_column | want: ok | compare: ordered
SELECT k FROM items ORDER BY i4, k;

-- name: order_by_hidden_columns | want: ok | compare: ordered
SELECT t FROM items ORDER BY d DESC NULLS LAST, k;

-- name: order_by_hidden_expr | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY abs(i4::bigint), k;

-- name: order_star | want: ok | compare: ordered
SELECT * FROM items ORDER BY k;

-- name: order_key_in | want: ok | compare: ordered
SELECT k, t FROM items WHERE k IN (0, 1, -1, 7, 42, 1000, 123456789) ORDER BY t, k;

-- name: order_key_eq | want: ok | compare: ordered
SELECT k, t FROM items WHERE k = 7 ORDER BY t;

-- name: order_filtered | want: ok | compare: ordered
SELECT k, f8 FROM items WHERE b AND i2 > 0 ORDER BY f8 DESC, k;

-- name: order_join_categories | want: ok | compare: ordered
SELECT c.name, i.k FROM items i JOIN categories c ON c.id = i.cat ORDER BY c.name, i.k;

-- name: order_join_hot | want: ok | compare: ordered
SELECT i.k, h.grp FROM items i JOIN hot h ON h.k = i.k ORDER BY h.grp NULLS FIRST, i.k;

-- name: order_hot | want: ok | compare: ordered
SELECT k, x FROM hot ORDER BY x DESC, k;

-- name: order_empty | want: ok | compare: ordered
SELECT k, t FROM empty_items ORDER BY t, k;

-- name: order_notes_name | want: ok | compare: ordered
SELECT name, score FROM notes ORDER BY name;

-- name: order_notes_name_desc | want: ok | compare: ordered
SELECT name FROM notes ORDER BY name DESC;

-- name: order_notes_nan_inf | want: ok | compare: ordered
SELECT name, f8s FROM notes ORDER BY f8s, name;

-- name: order_notes_nan_inf_desc | want: ok | compare: ordered
SELECT name, f8s FROM notes ORDER BY f8s DESC NULLS LAST, name;

-- name: order_notes_numeric_nan | want: ok | compare: ordered
SELECT name, ns FROM notes ORDER BY ns NULLS FIRST, name;

-- name: order_union_all | want: ok | compare: sortkeys(1)
SELECT k FROM items WHERE i2 = 1 UNION ALL SELECT k FROM hot ORDER BY 1;

---------------------------------------------------------------- LIMIT and OFFSET

-- name: limit | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY k LIMIT 10;

-- name: limit_desc_1 | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY k DESC LIMIT 1;

-- name: limit_text | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY t NULLS FIRST, k LIMIT 25;

-- name: limit_only_sort_columns | want: ok | compare: ordered
SELECT i4 FROM items ORDER BY i4 DESC LIMIT 30;

-- name: offset | want: ok | compare: ordered
SELECT k FROM items ORDER BY k OFFSET 1490;

-- name: offset_past_end | want: ok | compare: ordered
SELECT k FROM items ORDER BY k OFFSET 100000;

-- name: limit_offset | want: ok | compare: ordered
SELECT k, t FROM items ORDER BY t, k LIMIT 20 OFFSET 30;

-- name: limit_offset_uuid | want: ok | compare: ordered
SELECT u, k FROM items ORDER BY u DESC, k LIMIT 7 OFFSET 3;

-- name: limit_0 | want: ok | compare: ordered
SELECT k FROM items ORDER BY k LIMIT 0;

-- name: limit_all | want: ok | compare: ordered
SELECT k, i2 FROM items ORDER BY i2, k LIMIT ALL;

-- name: limit_null | want: ok | compare: ordered
SELECT k FROM items ORDER BY k DESC LIMIT NULL;

-- name: limit_larger_than_table | want: ok | compare: ordered
SELECT k, d FROM items ORDER BY d, k LIMIT 100000;

-- name: limit_param | want: ok | compare: ordered | args: 7
SELECT k, i8 FROM items ORDER BY i8 DESC, k LIMIT $1;

-- name: limit_offset_params | want: ok | compare: ordered | args: 5, 10
SELECT k, ts FROM items ORDER BY ts, k LIMIT $1 OFFSET $2;

-- name: limit_param_zero | want: ok | compare: ordered | args: 0
SELECT k FROM items ORDER BY k LIMIT $1;

-- name: fetch_first | want: ok | compare: ordered
SELECT k, f8 FROM items ORDER BY f8 DESC NULLS LAST, k FETCH FIRST 3 ROWS ONLY;

-- name: offset_fetch_next | want: ok | compare: ordered
SELECT k FROM items ORDER BY k OFFSET 5 ROWS FETCH NEXT 5 ROWS ONLY;

-- name: limit_without_order | want: ok | compare: rowcount
SELECT k FROM items LIMIT 10;

-- name: limit_without_order_filtered | want: ok | compare: rowcount
SELECT k, t FROM items WHERE i2 = 1 LIMIT 5;

-- name: limit_key_in | want: ok | compare: ordered
SELECT k FROM items WHERE k IN (0, 1, -1, 7, 42, 1000) ORDER BY k DESC LIMIT 3;

-- name: limit_key_eq | want: ok | compare: ordered
SELECT k, t FROM items WHERE k = 42 ORDER BY k LIMIT 1;

-- name: limit_join_categories | want: ok | compare: ordered
SELECT i.k, c.name FROM items i JOIN categories c ON c.id = i.cat ORDER BY i.i4 DESC NULLS LAST, i.k LIMIT 5;

-- name: limit_hot | want: ok | compare: ordered
SELECT k, x FROM hot ORDER BY x, k LIMIT 5;

-- name: limit_empty | want: ok | compare: ordered
SELECT k FROM empty_items ORDER BY k LIMIT 5;

-- name: limit_notes | want: ok | compare: ordered
SELECT name, f8s FROM notes ORDER BY f8s DESC, name LIMIT 6;

-- name: fetch_with_ties | want: ok | compare: sortkeys(2)
SELECT k, i2 FROM items ORDER BY i2 FETCH FIRST 3 ROWS WITH TIES;

---------------------------------------------------------------- aggregates without GROUP BY

-- name: count_star | want: ok | compare: set
SELECT count(*) FROM items;

-- name: count_columns | want: ok | compare: set
SELECT count(k), count(i2), count(t), count(n), count(b), count(u), count(tstz) FROM items;

-- name: agg_smallint | want: ok | compare: set
SELECT sum(i2), min(i2), max(i2), avg(i2) FROM items;

-- name: agg_integer | want: ok | compare: set
SELECT sum(i4), min(i4), max(i4), avg(i4) FROM items;

-- name: agg_bigint | want: ok | compare: set
SELECT sum(i8), min(i8), max(i8), avg(i8) FROM items;

-- name: agg_bigint_key | want: ok | compare: set
SELECT sum(k), min(k), max(k), avg(k) FROM items;

-- name: agg_real | want: ok | compare: set
SELECT sum(f4), min(f4), max(f4), avg(f4) FROM items;

-- name: agg_double | want: ok | compare: set
SELECT sum(f8), min(f8), max(f8), avg(f8) FROM items;

-- name: agg_numeric | want: ok | compare: set
SELECT sum(n), min(n), max(n), avg(n) FROM items;

-- name: avg_integers_alone | want: ok | compare: set
SELECT avg(i2), avg(i4) FROM items WHERE i4 BETWEEN -50 AND 50;

-- name: agg_text | want: ok | compare: set
SELECT min(t), max(t), min(v), max(v) FROM items;

-- name: agg_date | want: ok | compare: set
SELECT min(d), max(d) FROM items;

-- name: agg_date_finite | want: ok | compare: set
SELECT min(d), max(d) FROM items WHERE isfinite(d);

-- name: agg_timestamp | want: ok | compare: set
SELECT min(ts), max(ts), min(tstz), max(tstz) FROM items;

-- name: agg_uuid | want: ok | compare: set
SELECT min(u::text), max(u::text) FROM items;

-- name: agg_bool | want: ok | compare: set
SELECT bool_and(b), bool_or(b), every(b) FROM items;

-- name: agg_bool_filtered | want: ok | compare: set
SELECT bool_and(b), bool_or(b) FROM items WHERE b;

-- name: agg_mixed_aliases | want: ok | compare: set
SELECT count(*) AS n_rows, sum(i4) AS total, max(t) AS last_t, min(d) AS first_d FROM items WHERE i2 >= 0;

-- name: agg_expression_argument | want: ok | compare: set
SELECT sum(i4 / 2), max(length(t)), min(abs(f8)) FROM items;

-- name: agg_key_in | want: ok | compare: set
SELECT count(*), sum(i4), min(t) FROM items WHERE k IN (0, 1, -1, 7, 42, 1000, 123456789);

-- name: agg_key_eq | want: ok | compare: set
SELECT count(*), sum(f8), max(ts) FROM items WHERE k = 42;

-- name: agg_join_categories | want: ok | compare: set
SELECT count(*), sum(c.weight), max(c.name) FROM items i JOIN categories c ON c.id = i.cat;

-- name: agg_join_hot | want: ok | compare: set
SELECT count(*), sum(h.x), avg(h.amount) FROM items i JOIN hot h ON h.k = i.k;

-- name: agg_notes_nan_inf | want: ok | compare: set
SELECT count(f8s), sum(f8s), min(f8s), max(f8s), avg(f8s) FROM notes;

-- name: agg_notes_finite | want: ok | compare: set
SELECT sum(f8s), avg(f8s) FROM notes WHERE f8s <> 'NaN' AND f8s NOT IN ('Infinity', '-Infinity');

-- name: agg_notes_numeric_nan | want: ok | compare: set
SELECT sum(ns), min(ns), max(ns), avg(ns) FROM notes;

-- name: agg_hot | want: ok | compare: set
SELECT count(*), sum(x), min(grp), max(amount), avg(x) FROM hot;

-- name: agg_nothing_matches | want: ok | compare: set
SELECT count(*), count(t), sum(i4), sum(n), min(t), max(d), avg(f8), bool_and(b) FROM items WHERE i4 > 1000000000 AND i4 < 0;

-- name: agg_nothing_matches_key | want: ok | compare: set
SELECT count(*), sum(i4) FROM items WHERE k = 31337;

-- name: agg_empty_table | want: ok | compare: set
SELECT count(*), count(x), sum(x), sum(f8), sum(n), min(t), max(d), avg(x), avg(n), bool_or(b) FROM empty_items;

-- name: string_agg | want: ok | compare: elements(1)
SELECT string_agg(t, ',') FROM items;

-- name: string_agg_varchar_delim | want: ok | compare: elements(1) | delim: ;
SELECT string_agg(v, ';') FROM items WHERE i2 = 2;

-- name: string_agg_empty | want: ok | compare: elements(1)
SELECT string_agg(t, ',') FROM empty_items;

-- name: array_agg_int | want: ok | compare: elements(1)
SELECT array_agg(i4) FROM items;

-- name: array_agg_text | want: ok | compare: elements(1)
SELECT array_agg(t) FROM items WHERE i2 = 1;

-- name: array_agg_numeric_uuid | want: ok | compare: elements(1, 2)
SELECT array_agg(n), array_agg(u) FROM items WHERE i2 = -1;

-- name: array_agg_dates_bools | want: ok | compare: elements(1, 2, 3)
SELECT array_agg(d), array_agg(b), array_agg(tstz) FROM items WHERE i2 = 3;

-- name: array_agg_empty | want: ok | compare: elements(1)
SELECT array_agg(x) FROM empty_items;

-- name: string_agg_with_count | want: ok | compare: elements(2)
SELECT count(*), string_agg(name, ',') FROM notes WHERE score = 7;

---------------------------------------------------------------- GROUP BY

-- name: group_i2 | want: ok | compare: set
SELECT i2, count(*) FROM items GROUP BY i2;

-- name: group_i2_ordered | want: ok | compare: ordered
SELECT i2, count(*), sum(i4), min(t), max(d) FROM items GROUP BY i2 ORDER BY i2 NULLS FIRST;

-- name: group_text | want: ok | compare: ordered
SELECT t, count(*) FROM items GROUP BY t ORDER BY t;

-- name: group_text_desc | want: ok | compare: ordered
SELECT v, count(*), sum(f8) FROM items GROUP BY v ORDER BY v DESC NULLS LAST;

-- name: group_two_columns | want: ok | compare: set
SELECT b, i2, count(*) FROM items GROUP BY b, i2;

-- name: group_two_columns_ordered | want: ok | compare: ordered
SELECT cat, b, count(*), avg(i4) FROM items GROUP BY cat, b ORDER BY 1, 2;

-- name: group_date | want: ok | compare: ordered
SELECT d, count(*) FROM items GROUP BY d ORDER BY d DESC;

-- name: group_ts | want: ok | compare: set
SELECT ts, count(*), max(k) FROM items GROUP BY ts;

-- name: group_tstz | want: ok | compare: ordered
SELECT tstz, count(*) FROM items GROUP BY tstz ORDER BY tstz NULLS FIRST;

-- name: group_uuid | want: ok | compare: set
SELECT u, count(*), min(k) FROM items GROUP BY u;

-- name: group_bool | want: ok | compare: ordered
SELECT b, count(*), sum(i2), avg(f4) FROM items GROUP BY b ORDER BY b;

-- name: group_numeric | want: ok | compare: set | numvalue
SELECT n, count(*) FROM items GROUP BY n;

-- name: group_real | want: ok | compare: ordered
SELECT f4, count(*) FROM items GROUP BY f4 ORDER BY f4;

-- name: group_numeric_sums | want: ok | compare: ordered
SELECT i2, sum(n), avg(n), sum(i8), avg(i8) FROM items GROUP BY i2 ORDER BY i2;

-- name: group_float_sums | want: ok | compare: ordered
SELECT cat, sum(f4), avg(f4), sum(f8), avg(f8) FROM items GROUP BY cat ORDER BY cat;

-- name: group_minmax_numeric | want: ok | compare: set | numvalue
SELECT i2, min(n), max(n) FROM items GROUP BY i2;

-- name: group_minmax_types | want: ok | compare: set
SELECT cat, min(ts), max(tstz), min(d), max(v), min(u::text), bool_and(b), bool_or(b) FROM items GROUP BY cat;

-- name: group_order_by_count | want: ok | compare: ordered
SELECT i2, count(*) FROM items GROUP BY i2 ORDER BY count(*) DESC, i2 LIMIT 5;

-- name: group_order_by_count_text | want: ok | compare: ordered
SELECT t AS k, count(*) FROM items GROUP BY t ORDER BY count(*) DESC, k LIMIT 5;

-- name: group_order_by_sum | want: ok | compare: ordered
SELECT v, sum(i4) FROM items GROUP BY v ORDER BY sum(i4) DESC NULLS LAST, v LIMIT 10;

-- name: group_order_by_avg_hidden | want: ok | compare: ordered
SELECT cat FROM items GROUP BY cat ORDER BY avg(i4), cat;

-- name: group_order_by_max_date | want: ok | compare: ordered
SELECT i2, max(d) FROM items GROUP BY i2 ORDER BY 2 DESC NULLS LAST, 1;

-- name: group_limit_offset | want: ok | compare: ordered
SELECT t, count(*) FROM items GROUP BY t ORDER BY t LIMIT 5 OFFSET 5;

-- name: group_hidden_column | want: ok | compare: set
SELECT count(*) FROM items GROUP BY i2;

-- name: group_by_position | want: ok | compare: ordered
SELECT b, count(*) FROM items GROUP BY 1 ORDER BY 1 NULLS FIRST;

-- name: group_by_expression | want: ok | compare: ordered
SELECT date_trunc('month', ts) AS month, count(*) FROM items GROUP BY 1 ORDER BY 1;

-- name: group_by_expression_text | want: ok | compare: ordered
SELECT lower(t), count(*), min(k) FROM items GROUP BY lower(t) ORDER BY 1;

-- name: group_string_agg | want: ok | compare: elements(2)
SELECT i2, string_agg(t, ',') FROM items GROUP BY i2;

-- name: group_array_agg | want: ok | compare: elements(2)
SELECT b, array_agg(k) FROM items GROUP BY b;

-- name: group_empty | want: ok | compare: set
SELECT x, count(*) FROM empty_items GROUP BY x;

-- name: group_empty_ordered | want: ok | compare: ordered
SELECT t, sum(x) FROM empty_items GROUP BY t ORDER BY t;

-- name: group_hot | want: ok | compare: ordered
SELECT grp, count(*), sum(x), sum(amount) FROM hot GROUP BY grp ORDER BY grp;

-- name: group_join_categories | want: ok | compare: ordered
SELECT c.name, count(*), sum(i.i4) FROM items i JOIN categories c ON c.id = i.cat GROUP BY c.name ORDER BY c.name;

-- name: group_left_join_categories | want: ok | compare: set
SELECT c.name, count(*) FROM items i LEFT JOIN categories c ON c.id = i.cat GROUP BY c.name;

-- name: group_key_in | want: ok | compare: set
SELECT b, count(*) FROM items WHERE k IN (0, 1, -1, 7, 42, 1000, 123456789) GROUP BY b;

-- name: group_notes | want: ok | compare: ordered | numvalue
SELECT score, count(*), sum(f8s), max(ns) FROM notes GROUP BY score ORDER BY score NULLS FIRST;

-- name: group_filter_nothing | want: ok | compare: set
SELECT i2, count(*) FROM items WHERE i4 > 1000000000 AND i4 < 0 GROUP BY i2;

---------------------------------------------------------------- HAVING

-- name: having_count | want: ok | compare: set
SELECT i4, count(*) FROM items GROUP BY i4 HAVING count(*) > 3;

-- name: having_sum | want: ok | compare: ordered
SELECT t, sum(i4) FROM items GROUP BY t HAVING sum(i4) >= 100 ORDER BY t;

-- name: having_and | want: ok | compare: set
SELECT i4, count(*), sum(f8) FROM items GROUP BY i4 HAVING count(*) > 3 AND sum(f8) > 0;

-- name: having_or | want: ok | compare: set
SELECT v, count(*) FROM items GROUP BY v HAVING count(*) > 45 OR max(i8) > 0;

-- name: having_not | want: ok | compare: set
SELECT i4, count(*) FROM items GROUP BY i4 HAVING NOT (count(*) > 14);

-- name: having_is_null | want: ok | compare: set
SELECT cat, i2 FROM items GROUP BY cat, i2 HAVING min(t) IS NULL;

-- name: having_is_not_null | want: ok | compare: set
SELECT i2, max(d) FROM items GROUP BY i2 HAVING max(d) IS NOT NULL;

-- name: having_avg | want: ok | compare: set
SELECT t, avg(i4) FROM items GROUP BY t HAVING avg(i4) > 0;

-- name: having_group_column | want: ok | compare: set
SELECT i2, count(*) FROM items GROUP BY i2 HAVING i2 > 0;

-- name: having_hidden_aggregate | want: ok | compare: set
SELECT i2 FROM items GROUP BY i2 HAVING sum(f8) > 0;

-- name: having_param | want: ok | compare: set | args: 40
SELECT t, count(*) FROM items GROUP BY t HAVING count(*) > $1;

-- name: having_order_by_count_limit | want: ok | compare: ordered
SELECT i4, count(*) FROM items GROUP BY i4 HAVING count(*) > 3 ORDER BY count(*) DESC, i4 LIMIT 5;

-- name: having_two_aggregates | want: ok | compare: set
SELECT cat, sum(i2), sum(f4) FROM items GROUP BY cat HAVING sum(i2) > sum(f4);

-- name: having_bool_or | want: ok | compare: set
SELECT t FROM items GROUP BY t HAVING bool_or(b);

-- name: having_timestamp | want: ok | compare: set
SELECT i2, min(ts) FROM items GROUP BY i2 HAVING min(ts) < '2024-01-05';

-- name: having_text | want: ok | compare: set
SELECT cat, max(t) FROM items GROUP BY cat HAVING max(t) >= 'z';

-- name: having_no_group_true | want: ok | compare: set
SELECT count(*) FROM items HAVING count(*) > 0;

-- name: having_no_group_false | want: ok | compare: set
SELECT count(*) FROM items HAVING count(*) > 1000000;

-- name: having_empty_table | want: ok | compare: set
SELECT count(*) FROM empty_items HAVING count(*) = 0;

-- name: having_hot | want: ok | compare: set
SELECT grp, count(*) FROM hot GROUP BY grp HAVING count(*) >= 10 OR grp IS NULL;

---------------------------------------------------------------- DISTINCT and DISTINCT ON

-- name: distinct_i2 | want: ok | compare: set
SELECT DISTINCT i2 FROM items;

-- name: distinct_text_ordered | want: ok | compare: ordered
SELECT DISTINCT t FROM items ORDER BY t;

-- name: distinct_two_columns | want: ok | compare: ordered
SELECT DISTINCT b, i2 FROM items ORDER BY 1, 2;

-- name: distinct_date_desc | want: ok | compare: ordered
SELECT DISTINCT d FROM items ORDER BY d DESC NULLS LAST;

-- name: distinct_uuid | want: ok | compare: set
SELECT DISTINCT u FROM items;

-- name: distinct_timestamps | want: ok | compare: set
SELECT DISTINCT ts, tstz FROM items WHERE i2 = 0;

-- name: distinct_float | want: ok | compare: ordered
SELECT DISTINCT f8 FROM items ORDER BY f8;

-- name: distinct_numeric | want: ok | compare: set | numvalue
SELECT DISTINCT n FROM items;

-- name: distinct_limit | want: ok | compare: ordered
SELECT DISTINCT t FROM items ORDER BY t LIMIT 5;

-- name: distinct_limit_offset | want: ok | compare: ordered
SELECT DISTINCT v FROM items ORDER BY v DESC LIMIT 4 OFFSET 2;

-- name: distinct_join_categories | want: ok | compare: set
SELECT DISTINCT c.name FROM items i JOIN categories c ON c.id = i.cat;

-- name: distinct_hot | want: ok | compare: set
SELECT DISTINCT grp FROM hot;

-- name: distinct_empty | want: ok | compare: set
SELECT DISTINCT t FROM empty_items;

-- name: distinct_notes_nan | want: ok | compare: ordered
SELECT DISTINCT f8s FROM notes ORDER BY f8s;

-- name: distinct_on | want: ok | compare: ordered
SELECT DISTINCT ON (i2) i2, k, t FROM items ORDER BY i2, k;

-- name: distinct_on_desc | want: ok | compare: ordered
SELECT DISTINCT ON (t) t, k FROM items ORDER BY t, k DESC;

-- name: distinct_on_two | want: ok | compare: ordered
SELECT DISTINCT ON (b, i2) b, i2, k, d FROM items ORDER BY b, i2, k;

-- name: distinct_on_limit | want: ok | compare: ordered
SELECT DISTINCT ON (cat) cat, k FROM items ORDER BY cat NULLS FIRST, k LIMIT 3;

-- name: distinct_on_hidden_order | want: ok | compare: ordered
SELECT DISTINCT ON (cat) k FROM items ORDER BY cat, ts DESC, k;

-- name: distinct_on_date | want: ok | compare: ordered
SELECT DISTINCT ON (d) d, tstz, k FROM items WHERE d < '2024-02-01' ORDER BY d, tstz NULLS FIRST, k;

---------------------------------------------------------------- writes (in transactions rolled back)

-- name: update_no_key | want: ok | compare: set
-- after: SELECT k, i4 FROM items
UPDATE items SET i4 = i4 + 1 WHERE i2 = 1;

-- name: update_text_no_key | want: ok | compare: set
-- after: SELECT k, t FROM items WHERE t IS NOT NULL
UPDATE items SET t = upper(t) WHERE t LIKE 'a%';

-- name: update_nothing | want: ok | compare: set
-- after: SELECT k, i4 FROM items WHERE i4 IS NOT NULL
UPDATE items SET i4 = 0 WHERE i4 > 1000000000 AND i4 < 0;

-- name: update_returning | want: ok | compare: set
-- after: SELECT k, i4, f8 FROM items WHERE i2 = 2
UPDATE items SET i4 = i4 / 2, f8 = f8 + 0.5 WHERE i2 = 2 RETURNING k, i4, f8;

-- name: update_returning_star | want: ok | compare: set
-- after: SELECT * FROM items WHERE b
UPDATE items SET b = NOT b WHERE b IS NOT NULL AND i4 < -40 RETURNING *;

-- name: update_key_returning | want: ok | compare: set
-- after: SELECT k, n FROM items WHERE k = 42
UPDATE items SET n = n + 1 WHERE k = 42 RETURNING k, n;

-- name: update_from_categories | want: ok | compare: set
-- after: SELECT k, i4 FROM items
UPDATE items SET i4 = 0 FROM categories c WHERE c.id = items.cat AND c.name = 'Books';

-- name: update_notes_returning | want: ok | compare: set
-- after: SELECT name, score FROM notes
UPDATE notes SET score = 0 WHERE score < 0 RETURNING name, score;

-- name: update_hot_returning | want: ok | compare: set
-- after: SELECT k, x FROM hot
UPDATE hot SET x = x + 100 RETURNING k, x;

-- name: update_empty | want: ok | compare: set
-- after: SELECT * FROM empty_items
UPDATE empty_items SET x = 1 RETURNING k;

-- name: update_replicated_returning | want: ok | compare: set
-- after: SELECT * FROM categories
UPDATE categories SET weight = weight * 2 WHERE id < 4 RETURNING id, weight;

-- name: delete_no_key | want: ok | compare: set
-- after: SELECT k FROM items
DELETE FROM items WHERE b IS NULL;

-- name: delete_returning | want: ok | compare: set
-- after: SELECT k, t FROM items
DELETE FROM items WHERE i2 = -3 RETURNING k, t, d;

-- name: delete_using_hot | want: ok | compare: set
-- after: SELECT k FROM items WHERE k % 7919 = 0
DELETE FROM items USING hot WHERE hot.k = items.k AND hot.x > 0;

-- name: delete_nothing | want: ok | compare: set
-- after: SELECT * FROM items WHERE k = 31337
DELETE FROM items WHERE k = 31337;

-- name: insert_returning | want: ok | compare: set
-- after: SELECT * FROM items WHERE k = 31337
INSERT INTO items (k, i4, t, n) VALUES (31337, 5, 'new', 2.50) RETURNING *;

-- name: update_key | want: 0A000
-- after: SELECT 1
UPDATE items SET k = 31337 WHERE k = 42;

-- name: delete_in_limited_subquery | want: 0A000
-- after: SELECT 1
DELETE FROM items WHERE k IN (SELECT k FROM items ORDER BY k LIMIT 5);

-- name: update_from_aggregate | want: 0A000
-- after: SELECT 1
UPDATE items SET i4 = (SELECT max(i4) FROM items) WHERE i2 = 0;

---------------------------------------------------------------- refused: shapes that cannot be exact across shards

-- name: count_distinct | want: ok | compare: set
SELECT count(DISTINCT i4) FROM items;

-- name: count_distinct_grouped | want: ok | compare: set
SELECT i2, count(DISTINCT t) FROM items GROUP BY i2;

-- name: sum_distinct | want: ok | compare: set
SELECT sum(DISTINCT i4) FROM items;

-- name: avg_distinct | want: ok | compare: set
SELECT avg(DISTINCT f8) FROM items;

-- name: array_agg_distinct | want: ok | compare: set
SELECT array_agg(DISTINCT t) FROM items;

-- name: string_agg_distinct | want: ok | compare: set
SELECT string_agg(DISTINCT t, ',') FROM items;

-- name: string_agg_order_by | want: ok | compare: set
SELECT string_agg(t, ',' ORDER BY t) FROM items;

-- name: array_agg_order_by | want: ok | compare: set
SELECT array_agg(i4 ORDER BY i4) FROM items;

-- name: window_row_number | want: ok | compare: set
SELECT k, row_number() OVER (ORDER BY k) FROM items;

-- name: window_rank_partition | want: ok | compare: set
SELECT k, rank() OVER (PARTITION BY i2 ORDER BY k) FROM items;

-- name: window_sum_over_all | want: ok | compare: set
SELECT k, sum(i4) OVER () FROM items;

-- name: window_count_partition | want: ok | compare: set
SELECT t, count(*) OVER (PARTITION BY t) FROM items;

-- name: window_lag | want: ok | compare: set
SELECT k, lag(k) OVER (ORDER BY k) FROM items;

-- name: window_named | want: ok | compare: set
SELECT k, first_value(k) OVER w FROM items WINDOW w AS (PARTITION BY b ORDER BY k);

-- name: percentile_cont | want: ok | compare: set
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY i4) FROM items;

-- name: percentile_disc | want: ok | compare: set
SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY f8) FROM items;

-- name: mode | want: ok | compare: set
SELECT mode() WITHIN GROUP (ORDER BY t) FROM items;

-- name: hypothetical_rank | want: ok | compare: set
SELECT rank(10) WITHIN GROUP (ORDER BY i4) FROM items;

-- name: stddev | want: ok | compare: set
SELECT stddev(i4) FROM items;

-- name: variance | want: ok | compare: set
SELECT variance(i8), variance(n) FROM items;

-- name: corr | want: ok | compare: set
SELECT round(corr(i2, i4)::numeric, 9) FROM items;

-- name: json_agg | want: ok | compare: set
SELECT json_agg(t ORDER BY k) FROM items;

-- name: jsonb_object_agg | want: ok | compare: set
SELECT jsonb_object_agg(k, t) FROM items WHERE i2 = 1;

-- name: bit_and | want: ok | compare: set
SELECT bit_and(i4) FROM items;

-- name: aggregate_arithmetic | want: ok | compare: set
SELECT sum(i4) + 1 FROM items;

-- name: aggregate_coalesce | want: ok | compare: set
SELECT coalesce(sum(i4), 0) FROM items;

-- name: aggregate_round | want: ok | compare: set
SELECT round(avg(i4), 2) FROM items;

-- name: aggregate_cast | want: ok | compare: set
SELECT avg(i4)::numeric(10, 2) FROM items;

-- name: aggregates_combined | want: ok | compare: set
SELECT max(f8) - min(f8) FROM items;

-- name: aggregate_ratio_grouped | want: ok | compare: set
SELECT i2, sum(f8) / count(*) FROM items GROUP BY i2;

-- name: having_expression | want: ok | compare: set
SELECT i2, count(*) FROM items GROUP BY i2 HAVING sum(i4) + 1 > 0;

-- name: order_by_aggregate_expression | want: ok | compare: sortkeys(2)
SELECT i2, count(*) FROM items GROUP BY i2 ORDER BY count(*) * 2;

-- name: union_distinct | want: ok | compare: set
SELECT i2 FROM items UNION SELECT x FROM hot;

-- name: intersect | want: ok | compare: set
SELECT t FROM items INTERSECT SELECT name FROM notes;

-- name: except | want: ok | compare: set
SELECT i4 FROM items EXCEPT SELECT x FROM hot;

-- name: group_rollup | want: ok | compare: set
SELECT i2, count(*) FROM items GROUP BY ROLLUP (i2);

-- name: group_cube | want: ok | compare: set
SELECT b, i2, count(*) FROM items GROUP BY CUBE (b, i2);

-- name: grouping_sets | want: ok | compare: set
SELECT b, i2, count(*) FROM items GROUP BY GROUPING SETS ((b), (i2), ());

-- name: derived_limit | want: ok | compare: set
SELECT count(*) FROM (SELECT k FROM items ORDER BY k LIMIT 10) s;

-- name: derived_aggregate | want: ok | compare: set
SELECT max(c) FROM (SELECT i2, count(*) AS c FROM items GROUP BY i2) s;

-- name: cte_aggregate | want: ok | compare: set
WITH s AS (SELECT i2, count(*) AS c FROM items GROUP BY i2) SELECT * FROM s;

-- name: cte_limit | want: ok | compare: set
WITH top AS (SELECT k FROM items ORDER BY k LIMIT 5) SELECT * FROM top;

-- name: in_limited_subquery | want: ok | compare: set
SELECT k FROM items WHERE k IN (SELECT k FROM items ORDER BY k DESC LIMIT 3);

---------------------------------------------------------------- errors every side must give

-- name: division_by_zero | want: 22012
SELECT k, 1 / (i4 - i4) FROM items;

-- name: division_by_zero_ordered | want: 22012
SELECT k, 1 / (i4 - i4) FROM items ORDER BY k;

-- name: cast_out_of_range | want: 22003
SELECT k::smallint FROM items;

-- name: bad_key_literal | want: 22P02
SELECT * FROM items WHERE k = 'abc';

-- name: unknown_column | want: 42703
SELECT nosuchcolumn FROM items;

-- name: distinct_order_not_in_list | want: 42P10
SELECT DISTINCT t FROM items ORDER BY k;

-- name: group_by_missing_column | want: 42803
SELECT i2, t FROM items GROUP BY i2;

---------------------------------------------------------------- the coordinator step (docs/cross-shard.md)

-- name: coord_expressions_over_aggregates | want: ok | compare: set
SELECT round(avg(i4), 6), sum(i4) * 2, sum(i8) / count(*), max(ts) FILTER (WHERE isfinite(ts)) - min(ts) FILTER (WHERE isfinite(ts)), coalesce(sum(i4), 0), stddev(i4)::numeric(20, 6) FROM items;

-- name: coord_expressions_grouped_ordered | want: ok | compare: ordered
SELECT cat, round(avg(n), 4) AS a, count(*) FILTER (WHERE b) AS yes FROM items GROUP BY cat ORDER BY cat NULLS FIRST;

-- name: coord_count_over_distinct | want: ok | compare: set
SELECT count(*) FROM (SELECT DISTINCT t FROM items) d;

-- name: coord_cte_aggregated_twice | want: ok | compare: set
WITH per AS (SELECT i2, sum(i4) AS s FROM items GROUP BY i2) SELECT max(s) - min(s), count(*) FROM per;

-- name: coord_in_subquery_other_table | want: ok | compare: set
SELECT count(*), sum(i4) FROM items WHERE i4 IN (SELECT x FROM hot WHERE amount > 0);

-- name: coord_window_order_limit | want: ok | compare: ordered
SELECT k, row_number() OVER (ORDER BY k DESC) AS rn, sum(i4) OVER (ORDER BY k ROWS 2 PRECEDING) FROM items ORDER BY k LIMIT 20;

-- name: coord_percentiles_grouped | want: ok | compare: ordered
SELECT i2, percentile_cont(0.25) WITHIN GROUP (ORDER BY f8), percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM items GROUP BY i2 ORDER BY i2 NULLS LAST;

-- name: coord_string_agg_ordered | want: ok | compare: ordered
SELECT i2, string_agg(t, '|' ORDER BY k), array_agg(k ORDER BY k DESC) FROM items WHERE i2 IS NOT NULL GROUP BY i2 ORDER BY i2;

-- name: coord_join_not_on_keys_order_limit | want: ok | compare: ordered
SELECT n.name, i.k, i.t FROM notes n JOIN items i ON i.k = n.item_k ORDER BY n.name, i.k LIMIT 25;

-- name: coord_join_three_tables | want: ok | compare: set
SELECT c.name, count(DISTINCT n.name), sum(h.amount) FROM items i JOIN categories c ON c.id = i.cat JOIN notes n ON n.item_k = i.k LEFT JOIN hot h ON h.x = i.i4 GROUP BY c.name;

-- name: coord_param_filter | want: ok | compare: set | args: 3
SELECT count(DISTINCT t), round(avg(i4), 3) FROM items WHERE i2 = $1;

-- name: coord_param_window | want: ok | compare: ordered | args: 100
SELECT k, rank() OVER (ORDER BY i4 NULLS LAST, k) FROM items WHERE i4 > $1 ORDER BY k;

-- name: coord_text_with_quotes | want: ok | compare: set
SELECT count(DISTINCT body), max(length(body)) FROM notes;

-- name: coord_empty_table | want: ok | compare: set
SELECT count(DISTINCT k), sum(k) * 2, max(k) - min(k) FROM empty_items;

-- name: coord_nan_and_infinity | want: ok | compare: set
SELECT count(DISTINCT f8s), count(DISTINCT ns) FROM notes;

-- name: coord_error_passes_through | want: 22012
SELECT sum(i4) / 0 FROM items;

-- name: coord_pushdown_filters | want: ok | compare: set
SELECT count(DISTINCT t), sum(i4) * 2 FROM items WHERE i2 = 3 AND t LIKE 'a%' AND i4 IS NOT NULL;

-- name: coord_pushdown_aliased_or | want: ok | compare: ordered
SELECT i.k, row_number() OVER (ORDER BY i.k) FROM items i WHERE i.i4 BETWEEN -10 AND 10 AND (i.b OR i.t IS NULL) AND i.i2 IN (1, 2, 3) ORDER BY i.k;

-- name: coord_pushdown_not_in_outer_join | want: ok | compare: set
SELECT count(*), count(DISTINCT i.i4) FROM items i LEFT JOIN hot h ON h.x = i.i4 WHERE h.k IS NULL;

-- name: coord_pushdown_correlated | want: ok | compare: set
SELECT count(*) FROM items WHERE i4 > (SELECT avg(i4) FROM items x WHERE x.i2 = items.i2 AND x.cat > 2);

-- name: coord_pushdown_derived | want: ok | compare: set
SELECT count(DISTINCT s.t) FROM (SELECT t, i4 FROM items WHERE i4 < 0 AND t <> '') s WHERE s.i4 > -30;
