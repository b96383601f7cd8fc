// One row per Snowplow event of the project.
import { eventsTable, sql } from './dialect';
import { clientDimensions } from './clientDimensions';
import { refreshKey } from './refreshKey';

cube(`TrackedEvents`, {
  // Not Cube's default ten seconds, which runs every panel again on each
  // view (cube/README.md, "Refresh key").
  refreshKey,
  sqlTable: eventsTable(SECURITY_CONTEXT),
  title: `Tracked Events`,

  // The counts count rows (sql 1), the same figure as Cube's default count
  // of the primary key, which is never NULL, without reading every event's
  // event_id: that costs the store four times the count itself.
  measures: {
    count: {
      type: `count`,
      sql: `1`,
      title: `Count`,
    },

    pageViewsCount: {
      type: `count`,
      sql: `1`,
      title: `Page Views`,
      filters: [{ sql: `${CUBE}.event = 'page_view'` }],
    },

    linkClicksCount: {
      type: `count`,
      sql: `1`,
      title: `Link Clicks`,
      filters: [{ sql: `${CUBE}.event_name = 'link_click'` }],
    },

    // Users are browsers (the first-party cookie id), so anonymous visitors
    // count too; TrackedEvents.userId is the signed-in id.
    uniqueUsersCount: {
      type: `countDistinct`,
      sql: `domain_userid`,
      title: `Unique Users`,
    },
  },

  dimensions: {
    ...clientDimensions,

    eventId: {
      sql: `event_id`,
      type: `string`,
      primaryKey: true,
      shown: true,
      title: `Event ID`,
    },

    event: {
      sql: `event`,
      type: `string`,
      title: `Event Type`,
    },

    eventName: {
      sql: `event_name`,
      type: `string`,
      title: `Event Name`,
    },

    derivedTstamp: {
      sql: `derived_tstamp`,
      type: `time`,
      ...sql.timeField,
      title: `Event Time`,
    },

    // Jitsu-era name still used by GitLab clients and the API documentation.
    utcTime: {
      sql: `derived_tstamp`,
      type: `time`,
      ...sql.timeField,
      title: `UTC Time`,
    },

    pageUrl: {
      sql: `page_url`,
      type: `string`,
      title: `Page URL`,
    },

    baseUrl: {
      sql: sql.baseUrl(`${CUBE}.page_url`),
      type: `string`,
      title: `Base URL`,
      description: `Page URL without query string and fragment`,
    },

    pageUrlhosts: {
      sql: `page_urlhost`,
      type: `string`,
      title: `Page URL Host`,
    },

    pageUrlpath: {
      sql: `page_urlpath`,
      type: `string`,
      title: `Page Path`,
    },

    // Jitsu-era name of pageUrlpath.
    docPath: {
      sql: `page_urlpath`,
      type: `string`,
      title: `Document Path`,
    },

    pageTitle: {
      sql: `page_title`,
      type: `string`,
      title: `Page Title`,
    },

    pageReferrer: {
      sql: `page_referrer`,
      type: `string`,
      title: `Referrer`,
    },

    useragent: {
      sql: `useragent`,
      type: `string`,
      title: `User Agent`,
    },

    targetUrl: {
      sql: `target_url`,
      type: `string`,
      title: `Link Target URL`,
    },

    elementId: {
      sql: `element_id`,
      type: `string`,
      title: `Link Element ID`,
    },

    customEventName: {
      sql: `custom_event_name`,
      type: `string`,
      title: `Custom Event Name`,
    },

    customEventProps: {
      sql: `custom_event_props`,
      type: `string`,
      title: `Custom Event Properties`,
    },

    customUserProps: {
      sql: `custom_user_props`,
      type: `string`,
      title: `Custom User Properties`,
    },

    userId: {
      sql: `user_id`,
      type: `string`,
      title: `User ID`,
    },
  },

  segments: {
    // Signed-in users. ClickHouse stores an unset id as '' rather than NULL,
    // so both mean "not set".
    knownUsers: {
      sql: `${CUBE}.user_id IS NOT NULL AND ${CUBE}.user_id <> ''`,
      title: `Known Users`,
    },
  },
});
