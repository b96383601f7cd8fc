// Sessions again, seen from the returning-visitor angle: a session is
// "returning" when its user had an earlier session (session_index > 1, from
// Snowplow's domain_sessionidx). Rows and the time dimension are the same as
// in Sessions, so a date filter on first_timestamp selects sessions by start.
import { sql } from './dialect';
import { sessionsSql } from './Sessions';
import { refreshKey } from './refreshKey';

cube(`ReturningUsers`, {
  // Not Cube's default ten seconds, which runs every panel again on each
  // view (cube/README.md, "Refresh key").
  refreshKey,
  sql: sessionsSql(SECURITY_CONTEXT),
  title: `Returning Users`,

  measures: {
    // Rows, as TrackedEvents.count: session_id is never NULL.
    allSessionsCount: {
      type: `count`,
      sql: `1`,
      title: `All Sessions`,
    },

    // 100 * (sessions with session_index > 1) / (all sessions).
    returningUserPercentage: {
      type: `number`,
      sql: `100.0 * SUM(CASE WHEN ${CUBE}.session_index > 1 THEN 1 ELSE 0 END) / NULLIF(COUNT(*), 0)`,
      title: `Returning Users (%)`,
    },
  },

  dimensions: {
    sessionId: {
      sql: `session_id`,
      type: `string`,
      primaryKey: true,
      title: `Session ID`,
    },

    first_timestamp: {
      sql: `start_at`,
      type: `time`,
      ...sql.timeField,
      title: `Session Start`,
    },
  },
});
