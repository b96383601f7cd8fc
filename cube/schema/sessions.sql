-- One project's sessions on DuckDB, one row per domain_sessionid, exactly
-- as model/Sessions.js defines them (see the comment at its top), computed
-- over ALL of the project's events. The loader builds it once the events
-- are in (cube/scripts/load-events.js), so that a dashboard reads a row per
-- session instead of grouping every event of the project on every query.
-- Rows are in start_at order: a date range on Sessions.startAt then skips
-- whole row groups (DuckDB's zone maps). user_key is the session's user's
-- number (users.sql). The loader substitutes {{schema}}.
CREATE TABLE {{schema}}.sessions AS
SELECT s.*, u.user_key
FROM (SELECT
    domain_sessionid AS session_id,
    MIN(domain_userid) AS domain_userid,
    MIN(domain_sessionidx) AS session_index,
    MIN(derived_tstamp) AS start_at,
    MAX(derived_tstamp) AS end_at,
    (epoch_ms(MAX(derived_tstamp)) - epoch_ms(MIN(derived_tstamp))) AS duration_ms,
    MIN(agent_name) AS agent_name,
    MIN(agent_version) AS agent_version,
    MIN(os_family) AS os_family,
    MIN(os_name) AS os_name,
    MIN(os_version) AS os_version,
    MIN(os_version_major) AS os_version_major,
    MIN(br_lang) AS br_lang,
    MIN(doc_lang) AS doc_lang,
    MIN(viewport_size) AS viewport_size
FROM {{schema}}.snowplow_events
GROUP BY domain_sessionid) s
LEFT JOIN {{schema}}.users u ON u.domain_userid = s.domain_userid
ORDER BY s.start_at, s.session_id
