// Test-only cube: the project's events behind a query that takes a chosen
// time, to exercise Cube's "Continue wait" answer and its result cache.
// The server loads this file only in test mode, and there its driver sleeps
// before running any SQL that carries the marker comment below.
import { eventsTable } from './dialect';

cube(`SlowEvents`, {
  sql: `SELECT * FROM ${eventsTable(SECURITY_CONTEXT)} /* cube-test-slow-query */`,
  title: `Slow Events (test only)`,

  // Never changes, so that a cached result stays valid between a warm-up
  // and the load after it. Cube's default key changes every 10 seconds,
  // which would expire it now and then by chance. CUBE_TEST_SLOW_REFRESH
  // gives it a key of that many seconds instead, for tests of answers
  // renewed behind the views (their renewal takes CUBE_TEST_SLOW_MS).
  refreshKey: COMPILE_CONTEXT.testSlowRefreshEvery
    ? { every: COMPILE_CONTEXT.testSlowRefreshEvery }
    : { sql: `SELECT 1` },

  measures: {
    count: {
      type: `count`,
      title: `Count`,
    },
  },

  dimensions: {
    eventId: {
      sql: `event_id`,
      type: `string`,
      primaryKey: true,
    },

    event: {
      sql: `event`,
      type: `string`,
      title: `Event Type`,
    },

    derivedTstamp: {
      sql: `derived_tstamp`,
      type: `time`,
      title: `Event Time`,
    },
  },
});
