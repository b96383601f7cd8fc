-- One project's events: a subset of Snowplow's canonical event with the
-- parsed user-agent and custom-event columns GitLab's data model reads.
-- The table lives in the project's own schema (ClickHouse: database)
-- gitlab_project_<id>; the loader substitutes {{schema}}.
CREATE TABLE {{schema}}.snowplow_events (
    app_id              VARCHAR,
    platform            VARCHAR,
    event_id            VARCHAR NOT NULL,   -- UUID, primary key of TrackedEvents
    event               VARCHAR NOT NULL,   -- page_view | page_ping | unstruct | struct
    event_name          VARCHAR,            -- page_view | link_click | custom_event | ...
    collector_tstamp    TIMESTAMP NOT NULL, -- UTC
    dvce_created_tstamp TIMESTAMP,
    derived_tstamp      TIMESTAMP NOT NULL, -- UTC, the event's time for analytics
    user_id             VARCHAR,            -- set when the user is known (signed in)
    domain_userid       VARCHAR NOT NULL,   -- first-party cookie id, one per browser
    domain_sessionid    VARCHAR NOT NULL,   -- UUID, primary key of Sessions
    domain_sessionidx   INTEGER NOT NULL,   -- 1 for the user's first session, 2 for the next...
    page_url            VARCHAR,
    page_urlhost        VARCHAR,
    page_urlpath        VARCHAR,
    page_title          VARCHAR,
    page_referrer       VARCHAR,
    useragent           VARCHAR,
    agent_name          VARCHAR,            -- browser family: Chrome, Firefox, Safari, Edge
    agent_version       VARCHAR,
    os_family           VARCHAR,            -- Windows, Mac OS X, Linux, iOS, Android
    os_name             VARCHAR,
    os_version          VARCHAR,
    os_version_major    VARCHAR,
    br_lang             VARCHAR,            -- browser language, e.g. en-US
    doc_lang            VARCHAR,            -- document language
    viewport_size       VARCHAR,            -- e.g. 1440x900
    target_url          VARCHAR,            -- link_click only
    element_id          VARCHAR,            -- link_click only
    custom_event_name   VARCHAR,            -- custom_event only
    custom_event_props  VARCHAR,            -- JSON object text
    custom_user_props   VARCHAR             -- JSON object text
);
