'use strict';

// Which queries read a rollup the store keeps rather than every event, and
// how. The loader builds the rollups from the events (schema/user_days.sql,
// schema/page_days.sql), one row per UTC day and the columns each keeps.
//
// A query reads a rollup when its answer over the rollup's rows is, by
// construction, its answer over the events:
// - its measures are the rollup's: a distinct count of users does not
//   change when a user's events of a day and browser become one row
//   (user_days); a count of events becomes the sum of the rows' counts
//   (page_days, "weighted": renderCount);
// - its dimensions are columns the rollup keeps, and so are the members
//   of its filters, which then select whole rows;
// - its time, if any, is the event's time grouped by day or coarser, and
//   its date filters select whole UTC days: an event is in such a range,
//   and in such a group, exactly when its day is;
// - nothing else: no segment, measure filter, member expression, filter
//   group or ungrouped rows, and the time zone is UTC.
// Anything else reads the events. The lists are of members, not of SQL: a
// member added to the model later reads the events until it is added here
// with its reason.
//
// Cube's own pre-aggregations would do this matching, but they build their
// tables through the tenant's connection (read-only: tenantdb.js) and
// cannot serve a distinct count over a range they did not group by.

const CUBE = 'TrackedEvents';
const TIMES = new Set([`${CUBE}.derivedTstamp`, `${CUBE}.utcTime`]);
// Day or coarser: each is a union of whole days in UTC.
const GRANULARITIES = new Set(['day', 'week', 'month', 'quarter', 'year']);
const DAY_START = /T00:00:00(\.000)?Z?$/;
const DAY_END = /T23:59:59\.999Z?$/;
const EVENTS_TABLE = /^(gitlab_project_[0-9]+)\.snowplow_events$/;

const members = (names) => new Set(names.map((n) => `${CUBE}.${n}`));

// In the order they are tried. columns name each column as the events'
// column it stands for, so that Cube's SQL for the members is unchanged.
const ROLLUPS = [
  {
    table: 'user_days',
    columns: 'day AS derived_tstamp, user_key AS domain_userid, agent_name, agent_version',
    measures: members(['uniqueUsersCount']),
    dimensions: members(['agentName', 'agentVersion']),
  },
  {
    table: 'page_days',
    columns: 'day AS derived_tstamp, event, page_urlpath, page_url, n',
    measures: members(['count', 'pageViewsCount']),
    dimensions: members(['event', 'pageUrlpath', 'docPath', 'pageUrl']),
    // Each row stands for n events.
    weight: 'n',
  },
];

// Whether filter f keeps whole UTC days of the events' time: inDateRange
// from a day's first instant to a day's last, or beforeDate a day's first
// instant. (afterDate compares with the day's first instant too, which
// splits that day.)
function wholeDays(f) {
  if (!Array.isArray(f.values) || !f.values.every((v) => typeof v === 'string')) return false;
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

// Whether rollup answers query (a Cube BaseQuery while it builds its SQL)
// as the events do.
function serves(rollup, query) {
  if (query.timezone !== 'UTC' || query.ungrouped) return false;
  if ((query.segments || []).length || (query.measureFilters || []).length) return false;
  const measures = query.measures || [];
  if (!measures.length || !measures.every((m) => !m.expression && rollup.measures.has(m.measure))) return false;
  if (!(query.dimensions || []).every((d) => !d.expression && rollup.dimensions.has(d.dimension))) return false;
  const filtersServed = (query.filters || []).every((f) => {
    if (f.measure || typeof f.dimension !== 'string') return false;
    if (rollup.dimensions.has(f.dimension)) return true;
    return TIMES.has(f.dimension) && wholeDays(f);
  });
  if (!filtersServed) return false;
  return (query.timeDimensions || []).every((t) => {
    if (t.expression || !TIMES.has(t.dimension)) return false;
    if (t.granularity && !GRANULARITIES.has(t.granularity)) return false;
    if (!t.dateRange) return true;
    return DAY_START.test(t.dateFrom()) && DAY_END.test(t.dateTo());
  });
}

// The rollup that answers query for cube, whose events table Cube
// evaluated as eventsSql (schema.snowplow_events), as { rollup, from }, or
// null: the events.
function rollupFor(query, cube, eventsSql) {
  if (cube !== CUBE) return null;
  const match = EVENTS_TABLE.exec(String(eventsSql).trim());
  if (!match) return null;
  const rollup = ROLLUPS.find((r) => serves(r, query));
  if (!rollup) return null;
  return { rollup, from: `(SELECT ${rollup.columns} FROM ${match[1]}.${rollup.table})` };
}

// A count measure over a weighted rollup's rows: the events a row stands
// for where Cube's count(x) counts one (x not NULL), 0 when none, as the
// count is. rendered is Cube's SQL for the measure, evaluated its argument.
function renderCount(rollup, alias, rendered, evaluated) {
  if (!rollup.weight || rendered !== `count(${evaluated})`) return rendered;
  return `CAST(coalesce(sum(CASE WHEN (${evaluated}) IS NOT NULL THEN ${alias}.${rollup.weight} END), 0) AS BIGINT)`;
}

module.exports = { rollupFor, renderCount };
