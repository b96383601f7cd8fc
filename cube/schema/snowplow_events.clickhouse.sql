-- One project's events on ClickHouse: the same columns as
-- snowplow_events.sql, in the project's own database gitlab_project_<id>.
-- The loader substitutes {{schema}}, and {{timestamp}}: DateTime64(3, 'UTC')
-- where the server has it (20.1 and later), which keeps Snowplow's
-- milliseconds, else DateTime('UTC'), whole seconds. The data model reads
-- either. NULL is \N in ClickHouse's CSV; optional columns are Nullable.
-- Three statements, each ended by a line holding only ';', run in order:
-- the events, the sessions table and the materialized view that fills it.
-- An existing database gets the last two as sessions-migration.clickhouse.sql
-- says.
CREATE TABLE {{schema}}.snowplow_events (
    app_id              Nullable(String),
    platform            Nullable(String),
    event_id            String,
    event               String,
    event_name          Nullable(String),
    collector_tstamp    {{timestamp}},
    dvce_created_tstamp Nullable({{timestamp}}),
    derived_tstamp      {{timestamp}},
    user_id             Nullable(String),
    domain_userid       String,
    domain_sessionid    String,
    domain_sessionidx   Int32,
    page_url            Nullable(String),
    page_urlhost        Nullable(String),
    page_urlpath        Nullable(String),
    page_title          Nullable(String),
    page_referrer       Nullable(String),
    useragent           Nullable(String),
    agent_name          Nullable(String),
    agent_version       Nullable(String),
    os_family           Nullable(String),
    os_name             Nullable(String),
    os_version          Nullable(String),
    os_version_major    Nullable(String),
    br_lang             Nullable(String),
    doc_lang            Nullable(String),
    viewport_size       Nullable(String),
    target_url          Nullable(String),
    element_id          Nullable(String),
    custom_event_name   Nullable(String),
    custom_event_props  Nullable(String),
    custom_user_props   Nullable(String)
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(derived_tstamp)
ORDER BY (derived_tstamp, event_id)
;

-- The project's sessions (model/Sessions.js defines them: the comment at its
-- top), kept as events arrive rather than grouped from every event on each
-- query. Each insert into snowplow_events adds, through the materialized
-- view below, one row of partial aggregates per session it touches;
-- ClickHouse merges a session's rows in the background, and the data model
-- merges what is left when it reads (minMerge/maxMerge ... GROUP BY
-- session_id), so a session spread over many inserts counts once with its
-- whole span. Every column is a min() or max(): a row counted twice changes
-- nothing, which is what lets an existing database fill the table from its
-- events while new ones arrive (sessions-migration.clickhouse.sql).
--
-- The optional (Nullable) columns are kept as text that min() orders as it
-- orders the values, with NULL last: 'v' before each value, 'w' for NULL.
-- So the min is the least value that is set, or NULL when none is, as
-- min() over the events gives; the data model reads back
-- substring(nullIf(m, 'w'), 2). Why not minState of the Nullable column
-- itself: ClickHouse 18.16 types that state AggregateFunction(min, String)
-- and merges a session without a value to '' instead of NULL, and later
-- releases type it AggregateFunction(min, Nullable(String)), so no one table
-- would fit both.
CREATE TABLE {{schema}}.sessions (
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

-- Fills sessions from every insert into snowplow_events (the block
-- inserted, not the whole table).
CREATE MATERIALIZED VIEW {{schema}}.sessions_mv TO {{schema}}.sessions AS
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
FROM {{schema}}.snowplow_events
GROUP BY domain_sessionid
