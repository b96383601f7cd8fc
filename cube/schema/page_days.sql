-- One project's events counted by day and page on DuckDB: one row per UTC
-- day, event type, page path and page URL, with the number of events, in
-- day order. The loader builds it after the events
-- (cube/scripts/load-events.js).
--
-- Counts of events and page views over whole days, by day or coarser, and
-- by page, sum these rows rather than count every event: at 10 million
-- events of the demo site, 33 thousand rows. The answer is the same: an
-- event is in a range of whole days exactly when its day is. Which queries
-- read it: ../rollups.js. The loader substitutes {{schema}}.
CREATE TABLE {{schema}}.page_days AS
SELECT
    CAST(date_trunc('day', derived_tstamp) AS TIMESTAMP) AS day,
    event,
    page_urlpath,
    page_url,
    count(*) AS n
FROM {{schema}}.snowplow_events
GROUP BY ALL
ORDER BY day, event, page_urlpath, page_url
