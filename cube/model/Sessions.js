// One row per session (domain_sessionid), built from the events.
//
// Definitions, so that every figure can be recomputed with plain SQL over
// snowplow_events:
// - a session's start_at / end_at are the min / max derived_tstamp of its
//   events, and a date filter on Sessions.startAt selects sessions by start;
// - a session's user is its domain_userid (the browser cookie id, so
//   anonymous users count); its browser/OS/language/viewport fields are the
//   min() of the events' values (they are the same for all events of a
//   session; min() keeps the result deterministic if they are not);
// - session_index is min(domain_sessionidx): 1 for the user's first session;
// - duration_ms is end_at - start_at in whole milliseconds.
import { sessionsQuery, sql } from './dialect';
import { clientDimensions } from './clientDimensions';
import { refreshKey } from './refreshKey';

// The querying tenant's sessions as defined above. The store keeps them as
// a table that it builds from the events (DuckDB: at load time,
// schema/sessions.sql; ClickHouse: a materialized view as events arrive,
// schema/snowplow_events.clickhouse.sql) with exactly this definition, over
// all of the project's events, so that a session's start is the same
// whatever date range a query asks for, and no query groups every event of
// the project again.
export const sessionsSql = (securityContext) => sessionsQuery(securityContext);

cube(`Sessions`, {
  // Not Cube's default ten seconds, which runs every panel again on each
  // view (cube/README.md, "Refresh key").
  refreshKey,
  sql: sessionsSql(SECURITY_CONTEXT),
  title: `Sessions`,

  measures: {
    // Rows, as TrackedEvents.count: session_id is never NULL.
    count: {
      type: `count`,
      sql: `1`,
      title: `Count`,
    },

    // Distinct domain_userid of the selected sessions (counted as the
    // store's key for each, dialect.js).
    usersCount: {
      type: `countDistinct`,
      sql: `${CUBE}.${sql.userKey}`,
      title: `Users`,
    },

    // Same figure as usersCount; GitLab's dashboards use both names.
    uniqueUsersCount: {
      type: `countDistinct`,
      sql: `${CUBE}.${sql.userKey}`,
      title: `Unique Users`,
    },

    // avg(duration_ms) / 60000.0 over the selected sessions; a one-event
    // session lasts 0 minutes. The average of the whole milliseconds, then
    // minutes: the sum of integers is exact, so the figure does not depend
    // on the order the store adds rows in, which a database on several
    // threads varies from run to run (an average of the rows' minutes,
    // doubles, changed in its last digits).
    averageDurationMinutes: {
      type: `number`,
      sql: `AVG(${CUBE}.duration_ms) / 60000.0`,
      title: `Average Session Duration (minutes)`,
    },

    // count(*) / count(DISTINCT domain_userid).
    averagePerUser: {
      type: `number`,
      sql: `1.0 * COUNT(*) / NULLIF(COUNT(DISTINCT ${CUBE}.${sql.userKey}), 0)`,
      title: `Sessions per User`,
    },

    // Percentage of the selected sessions' users who have more than one
    // session, by Snowplow's lifetime session counter: users with at least
    // one selected session whose session_index > 1, divided by all distinct
    // users of the selected sessions, times 100.
    repeatPercent: {
      type: `number`,
      sql: `100.0 * COUNT(DISTINCT CASE WHEN ${CUBE}.session_index > 1 THEN ${CUBE}.${sql.userKey} END)`
        + ` / NULLIF(COUNT(DISTINCT ${CUBE}.${sql.userKey}), 0)`,
      title: `Returning Users (%)`,
    },
  },

  dimensions: {
    ...clientDimensions,

    sessionID: {
      sql: `session_id`,
      type: `string`,
      primaryKey: true,
      shown: true,
      title: `Session ID`,
    },

    startAt: {
      sql: `start_at`,
      type: `time`,
      ...sql.timeField,
      title: `Session Start`,
    },

    endAt: {
      sql: `end_at`,
      type: `time`,
      ...sql.timeField,
      title: `Session End`,
    },

    userId: {
      sql: `domain_userid`,
      type: `string`,
      title: `User (cookie ID)`,
    },

  },
});
