// The SQL of a funnel cube (cube/funnels.js writes one per funnel of a
// project, into that project's own model). Nothing of the definition is
// pasted as text: the window is a whole number and the targets come as hex,
// which the store decodes.
//
// Meaning, per user (domain_userid: users are browsers, as in
// TrackedEvents), over the user's page views within the date filter, in
// time order (derived_tstamp, then event_id), with times in whole seconds:
// ClickHouse's windowFunnel(window, 'strict_order') over one condition per
// step (page_urlpath = target). That is, from the user's first page view of
// step 1:
// - a page view of step 1 starts a chain (a later one replaces the start);
// - a page view of step k > 1 carries a chain that reached step k-1 on to
//   step k when it comes at most `window` seconds after that chain's start;
// - the scan stops at the first page view that is no step, or that is a
//   step k whose step k-1 no chain has reached yet (strict_order);
// - the user's level is the furthest step reached before the scan stopped.
// Each step's count is the users whose level is at least that step; users
// who never view step 1 count nowhere. No target repeats another
// (cube/funnels.js refuses that), so a page view is at most one step.
//
// Neither store can run that scan as written here: ClickHouse 18.16 has no
// 'strict_order' and DuckDB no windowFunnel. Both compute the same thing as
// sets, step by step: B_k(i), the start of the latest chain that reached
// step k before the user's i-th page view, is the largest start carried
// to step k at any earlier page view (starts only grow, so "largest" is
// "latest"); step k is first reached at P_k, the first page view that
// carries a chain to it; the stop is the first page view after P_1 that
// is no step, or a step k >= 3 with P_(k-1) not before it; the level is the
// count of steps with P_k before the stop.
import { eventsTable, sql } from './dialect';

const dialect = COMPILE_CONTEXT.sqlDialect || 'clickhouse';
const HEX = /^(?:[0-9a-f]{2})+$/;

const check = (window, targets) => {
  if (!Number.isInteger(window) || window <= 0 || !Array.isArray(targets) || targets.length === 0 ||
      targets.length > 20 || !targets.every((t) => HEX.test(t))) {
    throw new Error('funnelSql takes a whole window and 1 to 20 hex targets');
  }
};

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

// DuckDB: window functions over each user's page views, one layer a step.
// Only the rows the scan can reach go through the layers: a user's page
// views of the steps before the first page view that is no step after
// the user's first view of step 1 (where the scan stops); users without
// step 1 drop out. Most page views are of other pages, so the layers sort
// a small part of the range.
const duckdb = (table, dateFilter, window, targets) => {
  const n = targets.length;
  const before = 'PARTITION BY u ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING';
  const stepOf = `CASE ${targets.map((t, k) => `WHEN page_urlpath = decode(unhex('${t}')) THEN ${k + 1}`).join(' ')} ELSE 0 END`;
  const layers = [`l1 AS (SELECT *, j = 1 AS r1, max(CASE WHEN j = 1 THEN t END) OVER (${before}) AS b1 FROM kept)`];
  for (let k = 2; k <= n; k += 1) {
    const reach = `(j = ${k} AND t <= b${k - 1} + ${window})`;
    layers.push(`l${k} AS (SELECT *, coalesce(${reach}, false) AS r${k}, max(CASE WHEN ${reach} THEN b${k - 1} END) OVER (${before}) AS b${k} FROM l${k - 1})`);
  }
  const firsts = range(n).map((k) => `min(CASE WHEN r${k} THEN i END) OVER (PARTITION BY u) AS p${k}`).join(', ');
  const stops = range(n).filter((k) => k >= 3).map((k) => ` OR (j = ${k} AND (p${k - 1} IS NULL OR p${k - 1} >= i))`).join('');
  const level = range(n).map((k) => `(CASE WHEN p${k} IS NOT NULL AND (stop_at IS NULL OR p${k} < stop_at) THEN 1 ELSE 0 END)`).join(' + ');
  return `WITH ev AS MATERIALIZED (
    SELECT domain_userid AS u, derived_tstamp AS ts, event_id AS id, epoch_ms(derived_tstamp) // 1000 AS t, ${stepOf} AS j
    FROM ${table}
    WHERE event = 'page_view' AND ${dateFilter}
  ),
  first_ts AS (SELECT u, min(ts) AS fts FROM ev WHERE j = 1 GROUP BY u),
  first1 AS (
    SELECT ev.u, f.fts, min(ev.id) AS fid FROM ev JOIN first_ts f ON ev.u = f.u AND ev.ts = f.fts
    WHERE ev.j = 1 GROUP BY ev.u, f.fts
  ),
  others AS (
    SELECT ev.u, ev.ts, ev.id FROM ev JOIN first1 f ON ev.u = f.u
    WHERE ev.j = 0 AND (ev.ts > f.fts OR (ev.ts = f.fts AND ev.id > f.fid))
  ),
  zero_ts AS (SELECT u, min(ts) AS zts FROM others GROUP BY u),
  zero AS (SELECT o.u, z.zts, min(o.id) AS zid FROM others o JOIN zero_ts z ON o.u = z.u AND o.ts = z.zts GROUP BY o.u, z.zts),
  kept AS (
    SELECT ev.u, ev.ts, ev.t, ev.j, row_number() OVER (PARTITION BY ev.u ORDER BY ev.ts, ev.id) AS i
    FROM ev JOIN first1 f ON ev.u = f.u LEFT JOIN zero z ON ev.u = z.u
    WHERE ev.j > 0 AND (z.zts IS NULL OR ev.ts < z.zts OR (ev.ts = z.zts AND ev.id < z.zid))
  ),
  ${layers.join(',\n  ')},
  firsts AS (SELECT u, i, j, ${firsts} FROM l${n}),
  users AS (
    SELECT u, ${range(n).map((k) => `min(p${k}) AS p${k}`).join(', ')},
      min(CASE WHEN i > p1 AND (false${stops}) THEN i END) AS stop_at
    FROM firsts GROUP BY u
  ),
  levels AS (SELECT ${level} AS level FROM users)
  SELECT s.step AS step, count(levels.level) FILTER (WHERE levels.level >= s.step) AS total, (SELECT max(ts) FROM ev) AS x
  FROM (SELECT unnest(range(1, ${n + 1})) AS step) AS s LEFT JOIN levels ON true
  GROUP BY s.step`;
};

// ClickHouse (18.16 and later): each user's page views as arrays, in time
// order; the same steps with array functions.
const clickhouse = (table, dateFilter, window, targets) => {
  const n = targets.length;
  const stepOf = `multiIf(${targets.map((t, k) => `ifNull(page_urlpath, '') = unhex('${t}'), ${k + 1}`).join(', ')}, 0)`;
  const exprs = [
    'arrayMap(e -> e.3, ev) AS ts',
    'arrayMap(e -> e.4, ev) AS js',
    'arrayEnumerate(js) AS ix',
    // b1: the latest step-1 time before each page view (-1: none).
    'arrayMap(j -> toUInt8(j = 1), js) AS r1',
    'arrayFilter((t, r) -> r = 1, ts, r1) AS v1',
    'arrayMap((c, r) -> c - r, arrayCumSum(r1), r1) AS e1',
    'arrayMap(c -> if(c > 0, toInt64(v1[c]), toInt64(-1)), e1) AS b1',
  ];
  for (let k = 2; k <= n; k += 1) {
    exprs.push(
      `arrayMap((j, t, b) -> toUInt8(j = ${k} AND b >= 0 AND toInt64(t) <= b + ${window}), js, ts, b${k - 1}) AS r${k}`,
      `arrayFilter((b, r) -> r = 1, b${k - 1}, r${k}) AS v${k}`,
      `arrayMap((c, r) -> c - r, arrayCumSum(r${k}), r${k}) AS e${k}`,
      `arrayMap(c -> if(c > 0, v${k}[c], toInt64(-1)), e${k}) AS b${k}`,
    );
  }
  exprs.push(
    `[${range(n).map((k) => `arrayFirstIndex(r -> r = 1, r${k})`).join(', ')}] AS pa`,
    `arrayFirstIndex((j, i) -> i > pa[1] AND (j = 0 OR (j >= 3 AND (pa[j - 1] = 0 OR pa[j - 1] >= i))), js, ix) AS stop_at`,
    'arrayCount(p -> p > 0 AND (stop_at = 0 OR p < stop_at), pa) AS level',
  );
  return `SELECT step, countIf(level >= step) AS total, max(last) AS x
  FROM (
    SELECT last, ${exprs.join(',\n      ')}
    FROM (
      SELECT domain_userid AS u, max(derived_tstamp) AS last,
        arraySort(e -> (e.1, e.2), groupArray((derived_tstamp, event_id, toUInt64(toDateTime(derived_tstamp)), toUInt8(${stepOf})))) AS ev
      FROM ${table}
      WHERE event = 'page_view' AND ${dateFilter}
      GROUP BY domain_userid
    )
  )
  ARRAY JOIN arrayMap(s -> toUInt8(s + 1), range(${n})) AS step
  GROUP BY step`;
};

const BUILDERS = { duckdb, clickhouse };

// funnelSql is the cube's SQL for the querying tenant: rows (step, total,
// x), one per step, x being the latest page view in the date filter (the
// cube's date dimension, which filters nothing more: the filter applies to
// the page views through FILTER_PARAMS).
export const funnelSql = (securityContext, dateParam, window, targets) => {
  check(window, targets);
  return BUILDERS[dialect](eventsTable(securityContext), dateParam.filter('derived_tstamp'), window, targets);
};

// funnelTitle is a funnel's title: its name in words.
export const funnelTitle = (name) => {
  const words = String(name).replace(/_+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
};

// funnelDate is what the funnel's date dimension adds: the model's time
// field, so that the date filter the page views are scanned with compares
// them as stored (DuckDB: bounds cast once, not every row; see dialect.js).
export const funnelDate = sql.timeField;
