-- One project's users by day on DuckDB: one row per UTC day, user and
-- browser seen that day (users.sql numbers the users), in day order. The
-- loader builds it after the events (cube/scripts/load-events.js).
--
-- A distinct count of users over whole days, by day or coarser, and by
-- browser, reads these rows rather than every event: about a sixth of the
-- rows, integers rather than strings. The answer is the same: an event is in
-- a range of whole days exactly when its day is, and its day, week or month
-- is its day's. Users without an id stay as a row with user_key NULL, so
-- that a browser seen only without one still counts 0 users, as over the
-- events. Which queries read it: ../rollups.js. The loader substitutes
-- {{schema}}.
CREATE TABLE {{schema}}.user_days AS
SELECT DISTINCT
    CAST(date_trunc('day', e.derived_tstamp) AS TIMESTAMP) AS day,
    u.user_key,
    e.agent_name,
    e.agent_version
FROM {{schema}}.snowplow_events e
LEFT JOIN {{schema}}.users u ON u.domain_userid = e.domain_userid
ORDER BY day, user_key, agent_name, agent_version
