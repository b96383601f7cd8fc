-- One project's users on DuckDB: each distinct domain_userid (the browser
-- cookie id, model/TrackedEvents.js) numbered 1..n in the order of its text.
-- The loader builds it after the events (cube/scripts/load-events.js), and
-- the sessions and user_days tables carry the number beside each user. A
-- distinct count over these numbers is the distinct count over the ids (one
-- number per id, NULL for none), and DuckDB counts 4-byte integers several
-- times faster than 36-character strings. The loader substitutes {{schema}}.
CREATE TABLE {{schema}}.users AS
SELECT
    domain_userid,
    CAST(row_number() OVER (ORDER BY domain_userid) AS INTEGER) AS user_key
FROM (SELECT DISTINCT domain_userid FROM {{schema}}.snowplow_events WHERE domain_userid IS NOT NULL)
ORDER BY domain_userid
