'use strict';

// Which queries read a rollup the store keeps rather than every event, and
// what they read instead.
//
// The one rollup: user_days (schema/user_days.sql), one row per UTC day,
// user and browser. A query may read it when its answer over those rows is,
// by construction, its answer over the events:
// - its only measure is TrackedEvents.uniqueUsersCount, a distinct count
//   of users, which does not change when a user's events of a day become
//   one row (a count of events would);
// - its dimensions are among the browser's name and version, which the
//   rollup keeps;
// - its time, if any, is the event's time grouped by day or coarser, over
//   whole UTC days: an event is in such a range, and in such a group,
//   exactly when its day is;
// - its only filters select whole UTC days of that time;
// - nothing else: no other filter, segment, member expression or
//   ungrouped rows.
// Anything else reads the events. The allow-list is of members, not of
// SQL: a member added to the model later reads the events until it is
// added here with its reason.
//
// Cube's own pre-aggregations would do this matching, but they build their
// tables through the tenant's connection (which is read-only: tenantdb.js)
// and cannot serve a distinct count over a range they did not group by.

const CUBE = 'TrackedEvents';
const MEASURES = new Set([`${CUBE}.uniqueUsersCount`]);
const DIMENSIONS = new Set([`${CUBE}.agentName`, `${CUBE}.agentVersion`]);
const TIMES = new Set([`${CUBE}.derivedTstamp`, `${CUBE}.utcTime`]);
// Day or coarser: each is a union of whole days in UTC.
const GRANULARITIES = new Set(['day', 'week', 'month', 'quarter', 'year']);
const DAY_START = /T00:00:00(\.000)?Z?$/;
const DAY_END = /T23:59:59\.999Z?$/;
const EVENTS_TABLE = /^(gitlab_project_[0-9]+)\.snowplow_events$/;

// Whether the query (a Cube BaseQuery while it builds its SQL) is answered
// the same from user_days as from the events.
function readsUserDays(query) {
  if (query.timezone !== 'UTC' || query.ungrouped) return false;
  if ((query.segments || []).length || (query.measureFilters || []).length) return false;
  if (!(query.filters || []).every(wholeDays)) return false;
  const measures = query.measures || [];
  if (!measures.length || !measures.every((m) => !m.expression && MEASURES.has(m.measure))) return false;
  if (!(query.dimensions || []).every((d) => !d.expression && DIMENSIONS.has(d.dimension))) return false;
  return (query.timeDimensions || []).every((t) => {
    if (t.expression || !TIMES.has(t.dimension)) return false;
    if (t.granularity && !GRANULARITIES.has(t.granularity)) return false;
    if (!t.dateRange) return true;
    return DAY_START.test(t.dateFrom()) && DAY_END.test(t.dateTo());
  });
}

// Whether filter f keeps whole UTC days of the events' time: inDateRange
// from a day's first instant to a day's last, or beforeDate a day's first
// instant. (afterDate compares with the day's first instant too, which
// splits that day.)
function wholeDays(f) {
  if (f.measure || !TIMES.has(f.dimension) || !Array.isArray(f.values)) return false;
  if (!f.values.every((v) => typeof v === 'string')) return false;
  switch (f.camelizeOperator) {
    case 'inDateRange':
      return f.values.length === 2
        && DAY_START.test(f.inDbTimeZoneDateFrom(f.values[0]))
        && DAY_END.test(f.inDbTimeZoneDateTo(f.values[1]));
    case 'beforeDate':
      return f.values.length === 1 && DAY_START.test(f.inDbTimeZoneDateFrom(f.values[0]));
    default:
      return false;
  }
}

// What cube reads for query instead of eventsSql, the events table Cube
// evaluated for it (schema.snowplow_events), or null: the events. The
// rollup's columns carry the names of the events' columns the members
// read, so that Cube's SQL for them is unchanged.
function rollupFor(query, cube, eventsSql) {
  if (cube !== CUBE) return null;
  const match = EVENTS_TABLE.exec(String(eventsSql).trim());
  if (!match || !readsUserDays(query)) return null;
  return `(SELECT day AS derived_tstamp, user_key AS domain_userid, agent_name, agent_version FROM ${match[1]}.user_days)`;
}

module.exports = { rollupFor, readsUserDays };
