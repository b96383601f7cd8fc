-- Adds the sessions table and its materialized view to an existing
-- project database on ClickHouse (one created from an earlier
-- snowplow_events.clickhouse.sql, holding events already). Run as an
-- administrator, once per project database, replacing gitlab_project_<id>
-- with the database's name and {{timestamp}} with derived_tstamp's type in
-- that database (SHOW CREATE TABLE gitlab_project_<id>.snowplow_events:
-- DateTime64(3, 'UTC'), or DateTime('UTC') on releases before 20.1).
--
-- Order matters, and makes the migration safe while events keep arriving:
--
-- 1. The table, then the view: from the view's creation on, every insert
--    into snowplow_events also adds its sessions' partial aggregates.
-- 2. Then the backfill, over all events already there. Events inserted
--    between 1 and 2 are aggregated twice (by the view and by the
--    backfill); every column is a min() or a max(), so counting a row twice
--    changes no session. No event is missed: each is either read by the
--    backfill or inserted after the view existed.
--
-- Until step 2 ends, the Sessions and ReturningUsers panels of that project
-- count only the sessions of newly arrived events; deploy the data model
-- that reads the sessions table (model/dialect.js) after the backfill of
-- every project database, or run the migration in a quiet hour. The
-- backfill reads the project's events once: on the order of a second per
-- 10 million events on a production server, in ClickHouse's memory for one
-- GROUP BY over the project's sessions (about 200 bytes per session).
--
-- Nothing needs refreshing afterwards: the view is kept by ClickHouse on
-- every insert, and background merges shrink the table to about one row
-- per session. OPTIMIZE TABLE gitlab_project_<id>.sessions FINAL forces
-- that merge (never needed for correct answers: the data model merges
-- what is left when it reads).
--
-- The project's read-only user reads the new table with the grants it has
-- (its own database, on every release), so no user changes.
--
-- To undo: DROP TABLE gitlab_project_<id>.sessions_mv; then DROP TABLE
-- gitlab_project_<id>.sessions; (and deploy the data model before this
-- change first).

-- 1. The table and the view, exactly as in snowplow_events.clickhouse.sql.
CREATE TABLE gitlab_project_<id>.sessions (
    session_id                String,
    domain_userid_state       AggregateFunction(min, String),
    session_index_state       AggregateFunction(min, Int32),
    start_at_state            AggregateFunction(min, {{timestamp}}),
    end_at_state              AggregateFunction(max, {{timestamp}}),
    agent_name_state          AggregateFunction(min, String),
    agent_version_state       AggregateFunction(min, String),
    os_family_state           AggregateFunction(min, String),
    os_name_state             AggregateFunction(min, String),
    os_version_state          AggregateFunction(min, String),
    os_version_major_state    AggregateFunction(min, String),
    br_lang_state             AggregateFunction(min, String),
    doc_lang_state            AggregateFunction(min, String),
    viewport_size_state       AggregateFunction(min, String)
) ENGINE = AggregatingMergeTree()
ORDER BY session_id
;

CREATE MATERIALIZED VIEW gitlab_project_<id>.sessions_mv TO gitlab_project_<id>.sessions AS
SELECT
    domain_sessionid AS session_id,
    minState(domain_userid) AS domain_userid_state,
    minState(domain_sessionidx) AS session_index_state,
    minState(derived_tstamp) AS start_at_state,
    maxState(derived_tstamp) AS end_at_state,
    minState(ifNull(concat('v', agent_name), 'w')) AS agent_name_state,
    minState(ifNull(concat('v', agent_version), 'w')) AS agent_version_state,
    minState(ifNull(concat('v', os_family), 'w')) AS os_family_state,
    minState(ifNull(concat('v', os_name), 'w')) AS os_name_state,
    minState(ifNull(concat('v', os_version), 'w')) AS os_version_state,
    minState(ifNull(concat('v', os_version_major), 'w')) AS os_version_major_state,
    minState(ifNull(concat('v', br_lang), 'w')) AS br_lang_state,
    minState(ifNull(concat('v', doc_lang), 'w')) AS doc_lang_state,
    minState(ifNull(concat('v', viewport_size), 'w')) AS viewport_size_state
FROM gitlab_project_<id>.snowplow_events
GROUP BY domain_sessionid
;

-- 2. The backfill: the same aggregates over the events already there.
INSERT INTO gitlab_project_<id>.sessions
SELECT
    domain_sessionid AS session_id,
    minState(domain_userid) AS domain_userid_state,
    minState(domain_sessionidx) AS session_index_state,
    minState(derived_tstamp) AS start_at_state,
    maxState(derived_tstamp) AS end_at_state,
    minState(ifNull(concat('v', agent_name), 'w')) AS agent_name_state,
    minState(ifNull(concat('v', agent_version), 'w')) AS agent_version_state,
    minState(ifNull(concat('v', os_family), 'w')) AS os_family_state,
    minState(ifNull(concat('v', os_name), 'w')) AS os_name_state,
    minState(ifNull(concat('v', os_version), 'w')) AS os_version_state,
    minState(ifNull(concat('v', os_version_major), 'w')) AS os_version_major_state,
    minState(ifNull(concat('v', br_lang), 'w')) AS br_lang_state,
    minState(ifNull(concat('v', doc_lang), 'w')) AS doc_lang_state,
    minState(ifNull(concat('v', viewport_size), 'w')) AS viewport_size_state
FROM gitlab_project_<id>.snowplow_events
GROUP BY domain_sessionid
;

-- 3. Check (optional): the same number of sessions both ways.
SELECT
    (SELECT uniqExact(domain_sessionid) FROM gitlab_project_<id>.snowplow_events) AS from_events,
    (SELECT count() FROM (SELECT session_id FROM gitlab_project_<id>.sessions GROUP BY session_id)) AS in_table
