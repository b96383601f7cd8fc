-- One project's events on ClickHouse: the same columns as
-- snowplow_events.sql, in the project's own database gitlab_project_<id>.
-- The loader substitutes {{schema}}, and {{timestamp}}: DateTime64(3, 'UTC')
-- where the server has it (20.1 and later), which keeps Snowplow's
-- milliseconds, else DateTime('UTC'), whole seconds. The data model reads
-- either. NULL is \N in ClickHouse's CSV; optional columns are Nullable.
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
