'use strict';

// Query guard for a multi-tenant Cube: refuses any query that is not made
// only of fields Cube documents, each string in a strict grammar, each list
// bounded. Some Cube versions paste strings of the query into SQL
// (`timezone` into AT TIME ZONE '...' in Cube 0.33), and a tenant holding a
// Cube token could otherwise send one straight to Cube.
//
// The rules are those of the product analytics API (shared/request in the
// Go code); a test checks that both give the same verdict on the same
// queries. Add it to a Cube configuration (cube.js) as is:
//
//   const { queryRewrite } = require('./queryguard');
//   module.exports = { queryRewrite, ... };
//
// Cube calls queryRewrite with each query after its own schema check and
// normalisation (order as pairs, dates formatted), before any SQL is built,
// for load, dry-run, sql and subscriptions alike. It accepts the raw forms
// too, so it can be tried on what a client sends.
//
// queryRewrite sees one query at a time: a blend's queries, and a query's
// compared date ranges, each on its own (Cube has split them by then). So
// the cost of a whole call (answer cells summed over a blend and over
// compared ranges, at most 10 queries) is checkCall's, which a front
// middleware runs on the call as the client sent it, before Cube's code:
//
//   const { checkCall, Refusal } = require('./queryguard');
//   // checkCall(Array.isArray(query) ? query : [query], Array.isArray(query)) throws a Refusal

const { UserError } = require('@cubejs-backend/api-gateway');

const LIMITS = {
  maxLimit: 50000,
  maxOffset: 2147483647,
  maxMembers: 100,
  maxTimeDimensions: 10,
  maxFilters: 100,
  maxFilterDepth: 8,
  maxValues: 1000,
  maxValueLength: 4096,
  maxOrder: 100,
  maxCompareDateRanges: 12,
  maxNameLength: 128,
  maxRelativeDateLength: 64,
  maxQueries: 10,
};

// The cost budget of a call, the API's (shared/request/budget.go): what one
// request may ask Cube to build, bounded before any work starts. Cube builds
// a whole answer in its one heap, shared by every project, before it sends a
// byte of it.
const BUDGET = {
  // Answer cells of a call: per query rows (limit, or Cube's default) x
  // columns x compared date ranges, summed over a blend. The export users
  // need (50,000 rows x 12 columns) fits; measured, it takes 198 MB of
  // Cube's heap, 127 MB over an idle Cube's.
  maxCells: 600000,
  // Rows Cube answers without a limit (CUBEJS_DB_QUERY_DEFAULT_LIMIT's default).
  defaultLimit: 10000,
  // Time buckets a granularity may span over one date range.
  maxBuckets: 50000,
};

const GRANULARITIES = ['second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year'];
const DIMENSION_GRANULARITIES = GRANULARITIES.filter((g) => g !== 'quarter');
const OPERATORS = [
  'equals', 'notEquals', 'contains', 'notContains', 'startsWith', 'notStartsWith',
  'endsWith', 'notEndsWith', 'in', 'notIn', 'gt', 'gte', 'lt', 'lte', 'set', 'notSet',
  'inDateRange', 'notInDateRange', 'onTheDate', 'beforeDate', 'beforeOrOnDate',
  'afterDate', 'afterOrOnDate', 'measureFilter',
];
const QUERY_FIELDS = ['measures', 'dimensions', 'segments', 'timeDimensions', 'filters', 'order',
  'limit', 'offset', 'timezone', 'total', 'ungrouped', 'renewQuery', 'responseFormat'];

const NAME_PART = /^[A-Za-z0-9_]+$/;
const ZONE = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z?)?$/;
const RELATIVE = /^[A-Za-z][A-Za-z0-9 :-]*$/;

class Refusal extends Error {
  constructor(field, problem) {
    super(field ? `${field} ${problem}` : problem);
    this.field = field;
    this.problem = problem;
  }
}

const absent = (v) => v === undefined || v === null;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function validMember(s, withGranularity) {
  if (typeof s !== 'string' || s.length > LIMITS.maxNameLength) return false;
  const parts = s.split('.');
  if (!parts.every((p) => NAME_PART.test(p))) return false;
  return parts.length === 2 || (withGranularity && parts.length === 3 && DIMENSION_GRANULARITIES.includes(parts[2]));
}

function validTimezone(s) {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64 || s === 'Local' || !ZONE.test(s) || s.includes('//') || s.endsWith('/')) {
    return false;
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: s }); // eslint-disable-line no-new
    return true;
  } catch (e) {
    return false;
  }
}

function validDate(s) {
  if (typeof s !== 'string') return false;
  const m = DATE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (days === undefined || d < 1 || d > days) return false;
  if (m[4] === undefined) return true;
  return Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6]) < 60;
}

function validRelativeDate(s) {
  return typeof s === 'string' && s.length > 0 && s.length <= LIMITS.maxRelativeDateLength && RELATIVE.test(s);
}

function validValue(s) {
  // Bytes, as the API counts them.
  return Buffer.byteLength(s, 'utf8') <= LIMITS.maxValueLength && !/[\u0000-\u001f\u007f]/.test(s);
}

function quote(s, n) {
  const t = String(s);
  return JSON.stringify(t.length > n ? `${t.slice(0, n)}...` : t);
}

function join(field, key) {
  const k = key.length > 0 && key.length <= 64 && NAME_PART.test(key) ? key : quote(key, 64);
  return field ? `${field}.${k}` : k;
}

function keysOf(obj, field, allowed, what) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new Refusal(join(field, key), `is not a field of ${what}`);
    }
  }
}

// array checks that v is an array and calls each on its elements in turn,
// refusing at the first one past max, as a reader of the JSON text would.
function array(v, field, what, max, each = () => {}) {
  if (!Array.isArray(v)) throw new Refusal(field, `must be ${what}`);
  v.forEach((e, i) => {
    if (i === max) throw new Refusal(field, `has more than ${max} elements`);
    each(e, i);
  });
  return v;
}

function members(v, field, withGranularity) {
  array(v, field, 'an array of member names', LIMITS.maxMembers, (name, i) => {
    if (typeof name !== 'string') throw new Refusal(`${field}[${i}]`, 'must be a string');
    if (!validMember(name, withGranularity)) throw new Refusal(`${field}[${i}]`, 'is not a member name of the form "Cube.member"');
  });
}

function string(v, field) {
  if (typeof v !== 'string') throw new Refusal(field, 'must be a string');
  return v;
}

function dateRange(v, field) {
  if (typeof v === 'string') {
    if (!validRelativeDate(v)) throw new Refusal(field, 'must be one or two dates, or a relative range such as "last 7 days"');
    return;
  }
  array(v, field, 'one or two dates, or a relative range such as "last 7 days"', 2, (d, i) => {
    if (typeof d !== 'string') throw new Refusal(`${field}[${i}]`, 'must be a string');
    if (!validDate(d)) throw new Refusal(`${field}[${i}]`, 'is not a date such as 2024-01-31 or 2024-01-31T23:59:59');
  });
  if (v.length === 0) throw new Refusal(field, 'needs one or two dates');
}

function timeDimension(td, field) {
  if (!isObject(td)) throw new Refusal(field, 'must be an object with a dimension');
  keysOf(td, field, ['dimension', 'granularity', 'dateRange', 'compareDateRange'], 'a time dimension');
  if (absent(td.dimension)) throw new Refusal(`${field}.dimension`, 'is missing');
  if (!validMember(string(td.dimension, `${field}.dimension`), false)) {
    throw new Refusal(`${field}.dimension`, 'is not a member name of the form "Cube.member"');
  }
  if (!absent(td.granularity) && !GRANULARITIES.includes(string(td.granularity, `${field}.granularity`))) {
    throw new Refusal(`${field}.granularity`, `must be one of ${GRANULARITIES.join(', ')}`);
  }
  if (!absent(td.dateRange)) dateRange(td.dateRange, `${field}.dateRange`);
  if (!absent(td.compareDateRange)) {
    const at = `${field}.compareDateRange`;
    array(td.compareDateRange, at, 'an array of date ranges', LIMITS.maxCompareDateRanges, (d, i) => dateRange(d, `${at}[${i}]`));
    if (td.compareDateRange.length === 0) throw new Refusal(at, 'needs at least one date range');
    if (!absent(td.dateRange)) throw new Refusal(field, 'has both dateRange and compareDateRange: give one');
  }
  return td;
}

function valuesOf(operator) {
  if (['set', 'notSet', 'measureFilter'].includes(operator)) return { n: -1, dates: false };
  if (['inDateRange', 'notInDateRange'].includes(operator)) return { n: 2, dates: true };
  if (['onTheDate', 'beforeDate', 'beforeOrOnDate', 'afterDate', 'afterOrOnDate'].includes(operator)) return { n: 1, dates: true };
  return { n: 0, dates: false };
}

function filters(list, field, depth, count, uses) {
  if (depth > LIMITS.maxFilterDepth) throw new Refusal(field, `nests and/or groups deeper than ${LIMITS.maxFilterDepth} levels`);
  array(list, field, 'an array of filters', LIMITS.maxFilters, (f, i) => {
    count.n += 1;
    if (count.n > LIMITS.maxFilters) throw new Refusal(field, `brings the query's filters past ${LIMITS.maxFilters}`);
    filter(f, `${field}[${i}]`, depth, count, uses);
  });
}

function filter(f, field, depth, count, uses) {
  if (!isObject(f)) throw new Refusal(field, 'must be a filter object');
  keysOf(f, field, ['member', 'dimension', 'operator', 'values', 'or', 'and'], 'a filter');
  const has = (k) => !absent(f[k]);
  if (has('member')) memberOf(f.member, `${field}.member`);
  if (has('dimension')) memberOf(f.dimension, `${field}.dimension`);
  if (has('operator') && !OPERATORS.includes(string(f.operator, `${field}.operator`))) {
    throw new Refusal(`${field}.operator`, "is not one of Cube's operators");
  }
  if (has('values')) {
    array(f.values, `${field}.values`, 'an array of values', LIMITS.maxValues, (v, i) => {
      const at = `${field}.values[${i}]`;
      if (typeof v === 'string') {
        if (!validValue(v)) throw new Refusal(at, `must be text of at most ${LIMITS.maxValueLength} bytes without control characters`);
      } else if (!(typeof v === 'number' && Number.isFinite(v)) && typeof v !== 'boolean') {
        throw new Refusal(at, 'must be a string, a number or a boolean');
      }
    });
  }
  if (has('or')) filters(f.or, `${field}.or`, depth + 1, count, uses);
  if (has('and')) filters(f.and, `${field}.and`, depth + 1, count, uses);
  if (has('or') || has('and')) {
    if (has('or') && has('and')) throw new Refusal(field, 'has both or and and: nest one in the other');
    if (has('member') || has('dimension') || has('operator') || has('values')) {
      throw new Refusal(field, 'is an and/or group, which takes nothing else');
    }
    if ((f.or || f.and).length === 0) throw new Refusal(field, 'is an empty and/or group');
    return;
  }
  if (has('member') && has('dimension')) throw new Refusal(field, 'has both member and dimension: give one');
  if (!has('member') && !has('dimension')) throw new Refusal(field, 'needs a member, or an and/or list');
  if (!has('operator')) throw new Refusal(`${field}.operator`, 'is missing');
  uses.push({ where: 'filters', name: has('member') ? f.member : f.dimension });
  const values = has('values') ? f.values : [];
  const { n, dates } = valuesOf(f.operator);
  const at = `${field}.values`;
  if (n < 0 && values.length > 0) throw new Refusal(at, `must be left out: ${f.operator} takes no values`);
  if (n === 0 && values.length === 0) throw new Refusal(at, `is missing: ${f.operator} needs at least one value`);
  if (n > 0 && values.length !== n) throw new Refusal(at, `must be ${n} date(s) for ${f.operator}`);
  if (dates) {
    values.forEach((v, i) => {
      if (!validDate(v)) throw new Refusal(`${at}[${i}]`, 'is not a date such as 2024-01-31 or 2024-01-31T23:59:59');
    });
  }
}

function memberOf(v, field) {
  if (!validMember(string(v, field), false)) throw new Refusal(field, 'is not a member name of the form "Cube.member"');
}

function order(v, field) {
  const check = (at, member, dir) => {
    if (typeof member !== 'string' || !validMember(member, false)) throw new Refusal(at, 'is not a member name of the form "Cube.member"');
    if (dir !== 'asc' && dir !== 'desc') throw new Refusal(at, 'must be "asc" or "desc"');
  };
  if (isObject(v)) {
    Object.keys(v).forEach((k, i) => {
      if (typeof v[k] !== 'string') throw new Refusal(join(field, k), 'must be a string');
      check(join(field, k), k, v[k]);
      if (i === LIMITS.maxOrder) throw new Refusal(field, `has more than ${LIMITS.maxOrder} members`);
    });
    return;
  }
  array(v, field, 'an object or an array of ["Member", "asc"|"desc"] pairs', LIMITS.maxOrder, (p, i) => {
    const at = `${field}[${i}]`;
    array(p, at, 'a ["Member", "asc"|"desc"] pair', 2, (s, j) => string(s, `${at}[${j}]`));
    if (p.length !== 2) throw new Refusal(at, 'must be a ["Member", "asc"|"desc"] pair');
    check(at, p[0], p[1]);
  });
}

function integer(v, field, lo, hi) {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Refusal(field, 'must be a whole number');
  if (v < lo || v > hi) throw new Refusal(field, `is ${v}, outside ${lo} to ${hi}`);
}

function boolean(v, field) {
  if (typeof v !== 'boolean') throw new Refusal(field, 'must be true or false');
}

const cubeOf = (member) => member.split('.')[0];

// oneCube is GitLab's documented rule, applied to every cube: a query that
// measures one cube uses only that cube's members elsewhere.
function oneCube(q, uses) {
  const measured = [...new Set((q.measures || []).map(cubeOf))];
  if (measured.length === 0) return;
  for (const u of uses) {
    if (measured.length > 1) {
      throw new Refusal('query', `measures several cubes (${measured.sort().join(', ')}), so it cannot also use ${u.where} member ${u.name}: send one query per cube`);
    }
    if (cubeOf(u.name) !== measured[0]) {
      throw new Refusal('query', `measures ${measured[0]}, so its ${u.where} must be ${measured[0]} members: ${u.name} is not`);
    }
  }
}

// check throws a Refusal naming the first field of q that is wrong.
function check(q) {
  const field = 'query';
  if (!isObject(q)) throw new Refusal(field, 'must be a JSON object (a Cube query)');
  keysOf(q, field, QUERY_FIELDS, `a Cube query (${QUERY_FIELDS.join(', ')})`);
  const has = (k) => !absent(q[k]);
  const uses = [];
  if (has('measures')) members(q.measures, 'query.measures', false);
  if (has('dimensions')) {
    members(q.dimensions, 'query.dimensions', true);
    q.dimensions.forEach((name) => uses.push({ where: 'dimensions', name }));
  }
  if (has('segments')) {
    members(q.segments, 'query.segments', false);
    q.segments.forEach((name) => uses.push({ where: 'segments', name }));
  }
  let granular = false;
  let compared = 0;
  if (has('timeDimensions')) {
    array(q.timeDimensions, 'query.timeDimensions', 'an array of time dimensions', LIMITS.maxTimeDimensions, (td, i) => {
      timeDimension(td, `query.timeDimensions[${i}]`);
      granular = granular || !absent(td.granularity);
      if (!absent(td.compareDateRange)) compared += 1;
      uses.push({ where: 'timeDimensions', name: td.dimension });
    });
  }
  if (has('filters')) filters(q.filters, 'query.filters', 1, { n: 0 }, uses);
  if (has('order')) order(q.order, 'query.order');
  if (has('limit')) integer(q.limit, 'query.limit', 1, LIMITS.maxLimit);
  if (has('offset')) integer(q.offset, 'query.offset', 0, LIMITS.maxOffset);
  if (has('timezone') && !validTimezone(q.timezone)) {
    throw new Refusal('query.timezone', 'is not a time zone name such as UTC or America/Los_Angeles');
  }
  for (const k of ['total', 'ungrouped', 'renewQuery']) if (has(k)) boolean(q[k], `query.${k}`);
  if (has('responseFormat') && q.responseFormat !== 'default' && q.responseFormat !== 'compact') {
    throw new Refusal('query.responseFormat', 'must be "default" or "compact"');
  }
  const measures = has('measures') ? q.measures.length : 0;
  const dimensions = has('dimensions') ? q.dimensions.length : 0;
  if (measures === 0 && dimensions === 0 && !granular) {
    throw new Refusal('query', 'needs measures, dimensions or a time dimension with a granularity');
  }
  if (compared > 1) throw new Refusal('query.timeDimensions', 'may give compareDateRange for one time dimension only');
  oneCube(q, uses);
  (q.timeDimensions || []).forEach((td, i) => checkBuckets(td, `query.timeDimensions[${i}]`));
  checkCells(q, 'query');
}

// The budget, as budget.go has it: answer cells and time buckets.

// columns counts a query's answer columns as Cube 0.33 writes them: one per
// measure and dimension, two per time dimension with a granularity ("X.day"
// and "X"), the same for a dimension given as "X.day", one more for the
// compareDateRange column.
function columns(q) {
  let n = (q.measures || []).length;
  for (const d of q.dimensions || []) n += d.split('.').length === 3 ? 2 : 1;
  for (const td of q.timeDimensions || []) {
    if (!absent(td.granularity)) n += 2;
    if (!absent(td.compareDateRange)) n += 1;
  }
  return n;
}

// rows is the most rows of one result: the limit, or Cube's default.
// ungrouped does not lower it.
const rows = (q) => (absent(q.limit) ? BUDGET.defaultLimit : q.limit);

// ranges is how many results Cube answers with: one per compared range.
function ranges(q) {
  const td = (q.timeDimensions || []).find((t) => !absent(t.compareDateRange));
  return td ? td.compareDateRange.length : 1;
}

// cells is the most answer cells of q alone: rows x columns x ranges.
const cells = (q) => rows(q) * columns(q) * ranges(q);

// group writes n with thousands separated by commas, as the API does.
const group = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function checkCells(q, field) {
  const n = cells(q);
  if (n <= BUDGET.maxCells) return;
  const limit = absent(q.limit) ? `Cube's default limit ${BUDGET.defaultLimit}` : `limit ${q.limit}`;
  let shape = `${limit} × ${columns(q)} columns`;
  let reduce = `lower ${field}.limit or ask for fewer members`;
  if (ranges(q) > 1) {
    shape += ` × ${ranges(q)} compared date ranges`;
    reduce = `lower ${field}.limit, ask for fewer members or compare fewer date ranges`;
  }
  throw new Refusal(field, `asks for up to ${group(n)} answer cells (${shape}); the budget is ${group(BUDGET.maxCells)}: ${reduce}`);
}

// Wall-clock lengths in seconds: Cube buckets in the query's time zone, as
// a calendar does.
const DAY = 86400;
const FIXED_SECONDS = { second: 1, minute: 60, hour: 3600, day: DAY, week: 7 * DAY };
const MIN_SECONDS = { ...FIXED_SECONDS, month: 28 * DAY, quarter: 90 * DAY, year: 365 * DAY };
const MAX_SECONDS = { ...FIXED_SECONDS, month: 31 * DAY, quarter: 92 * DAY, year: 366 * DAY };
const FINER_THAN_DAY = ['second', 'minute', 'hour'];
// Caps the count of a relative range: far past any bound, and computed from
// alike in Go's int64.
const MAX_COUNT = 1000000000;
const RELATIVE_UNITS = 'day|week|month|year|quarter|hour|minute|second';
const ONE_UNIT = new RegExp(`(this|last|next) +(${RELATIVE_UNITS})`);
const UNITS = new RegExp(`(last|next) +(\\d+) +(${RELATIVE_UNITS})`);
const UNITS_AGO = /^(\d+) (second|minute|hour|day|week|month|year)s? ago$/;

function parseCount(digits) {
  const d = digits.replace(/^0+/, '');
  return d.length > 9 ? MAX_COUNT : Math.min(Number(`0${d}`), MAX_COUNT);
}

// relativeSpan measures a relative range as Cube 0.33's dateParser reads it
// (in lower case, its rules in this order): its longest length in seconds
// and the unit its start and end fall on the bounds of; null for the forms
// Cube leaves to chrono-node, whose length is known only once parsed.
function relativeSpan(range) {
  const s = range.toLowerCase();
  let m = ONE_UNIT.exec(s);
  if (m) return { span: MAX_SECONDS[m[2]], aligned: m[2] };
  m = UNITS.exec(s);
  if (m) return { span: parseCount(m[2]) * MAX_SECONDS[m[3]], aligned: m[3] };
  if (['today', 'yesterday', 'tomorrow'].some((d) => s.includes(d))) return { span: DAY, aligned: 'day' };
  if (s.startsWith('from ')) {
    const parts = s.slice(5).split(' to ');
    const ago = parts.length === 2 ? UNITS_AGO.exec(parts[0]) : null;
    if (!ago || parts[1] !== 'now') return null;
    const exact = FINER_THAN_DAY.find((g) => s.includes(g)) || 'day';
    return { span: parseCount(ago[1]) * MAX_SECONDS[ago[2]] + MAX_SECONDS[exact], aligned: exact };
  }
  return null;
}

// daysFromCivil is the days from 1970-01-01 to a proleptic Gregorian date
// (H. Hinnant's algorithm: exact for every year of the grammar, 0 to 9999).
function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// bucketIndex numbers the bucket of granularity g that a date of the
// grammar falls in (a date alone: its first second, or as the end of a
// range its last), so that two dates' numbers differ by the buckets
// between them. Weeks start on Monday, as ISO weeks do.
function bucketIndex(s, g, end) {
  const m = DATE.exec(s);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const days = daysFromCivil(y, mo, d);
  const sec = m[4] === undefined
    ? days * DAY + (end ? DAY - 1 : 0)
    : days * DAY + Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  switch (g) {
    case 'second': return sec;
    case 'minute': return Math.floor(sec / 60);
    case 'hour': return Math.floor(sec / 3600);
    case 'day': return Math.floor(sec / DAY);
    case 'week': return Math.floor((Math.floor(sec / DAY) + 3) / 7); // 1970-01-01 was a Thursday
    case 'month': return y * 12 + mo - 1;
    case 'quarter': return y * 4 + Math.floor((mo - 1) / 3);
    default: return y;
  }
}

// buckets is how many buckets of g a date range spans: exactly for dates,
// at most for a relative range it can measure; null for one it cannot.
function buckets(range, g) {
  if (typeof range !== 'string') {
    const n = bucketIndex(range[range.length - 1], g, true) - bucketIndex(range[0], g, false) + 1;
    return Math.max(n, 0);
  }
  const r = relativeSpan(range);
  if (!r) return null;
  const f = FIXED_SECONDS[g];
  if (f !== undefined && f <= MAX_SECONDS[r.aligned] && (g !== 'week' || r.aligned === 'week')) {
    return Math.floor(r.span / f); // whole buckets, from bound to bound
  }
  const m = MIN_SECONDS[g];
  return Math.floor((r.span + m - 1) / m) + 1;
}

function checkBuckets(td, field) {
  if (absent(td.granularity)) return;
  const check = (range, at) => {
    const n = buckets(range, td.granularity);
    if (n === null && FINER_THAN_DAY.includes(td.granularity)) {
      throw new Refusal(at, `is a relative range whose length is known only once Cube reads it (${quote(range, 64)}), too open for ${td.granularity} buckets: `
        + 'give dates, a range such as "last 7 days", or a granularity of day or coarser');
    }
    if (n !== null && n > BUDGET.maxBuckets) {
      const count = n >= 1e12 ? 'more than a trillion' : group(n);
      const spans = typeof range === 'string' ? 'may span up to' : 'spans';
      throw new Refusal(at, `${spans} ${count} ${td.granularity} buckets; a range may span at most ${group(BUDGET.maxBuckets)}: `
        + 'ask for a coarser granularity or a shorter range');
    }
  };
  if (!absent(td.dateRange)) check(td.dateRange, `${field}.dateRange`);
  (td.compareDateRange || []).forEach((range, i) => check(range, `${field}.compareDateRange[${i}]`));
}

const BLEND_NEEDS_GRANULARITY = 'must begin with a time dimension with a granularity: '
  + 'Cube blends the queries of an array by their first time dimension';

// checkCall checks a call's queries as a whole, as the API does: one query,
// or a blend of at most 10; each passes check; and their answers together
// are within the budget (in a blend each row also carries the blend's time
// key: one column more). It throws a Refusal; in a blend, a query's
// refusal names it (query[2].limit). It returns the call's cells, which
// the front (front.js) weighs a load by.
//
// blend says the call's query was an array (Cube blends an array of one
// too): Cube blends the answers by each query's first time dimension, and
// a query without one ends Cube's check in a TypeError (a 500), so each
// needs one with a granularity.
function checkCall(queries, blend = queries.length > 1) {
  array(queries, 'query', 'an array of queries', LIMITS.maxQueries, (q, i) => {
    try {
      check(q);
    } catch (e) {
      if (e instanceof Refusal && blend) {
        throw new Refusal(`query[${i}]${e.field.slice('query'.length)}`, e.problem);
      }
      throw e;
    }
  });
  if (queries.length === 0) throw new Refusal('query', 'is an empty array of queries');
  if (blend) {
    queries.forEach((q, i) => {
      const first = (q.timeDimensions || [])[0];
      if (!(first && first.granularity)) throw new Refusal(`query[${i}].timeDimensions`, BLEND_NEEDS_GRANULARITY);
    });
  }
  const timeKey = queries.length > 1 ? 1 : 0;
  const n = queries.reduce((sum, q) => sum + rows(q) * (columns(q) + timeKey) * ranges(q), 0);
  if (n > BUDGET.maxCells) {
    throw new Refusal('query', `asks for up to ${group(n)} answer cells over its ${queries.length} queries; the budget is ${group(BUDGET.maxCells)}: `
      + 'lower their limits, ask for fewer members or send fewer queries at once');
  }
  return n;
}

// queryRewrite is Cube's hook: it returns the query unchanged, or refuses
// it with a 400 that says which field is wrong.
function queryRewrite(query) {
  try {
    check(query);
  } catch (e) {
    if (e instanceof Refusal) throw new UserError(e.message);
    throw e;
  }
  return query;
}

// Funnel cubes (funnels.js) are named [a-z][a-z0-9_]*, the shared cubes
// with a capital: a member of a lower-case cube is a funnel's, and passes
// only for the tenant whose model has that funnel, and only as one of its
// members. Anyone else gets the 400 Cube gives for a cube it does not know.
const FUNNEL_CUBE = /^[a-z]/;
const FUNNEL_MEMBERS = ['count', 'step', 'date'];

// memberNames lists every member name a checked query uses.
function memberNames(q) {
  const names = [];
  for (const k of ['measures', 'dimensions', 'segments']) (q[k] || []).forEach((n) => names.push(n));
  (q.timeDimensions || []).forEach((td) => names.push(td.dimension));
  const walk = (fs) => (fs || []).forEach((f) => {
    if (!isObject(f)) return;
    if (typeof f.member === 'string') names.push(f.member);
    if (typeof f.dimension === 'string') names.push(f.dimension);
    walk(f.or);
    walk(f.and);
  });
  walk(q.filters);
  const order = q.order;
  if (Array.isArray(order)) order.forEach((o) => Array.isArray(o) && names.push(o[0]));
  else if (isObject(order)) Object.keys(order).forEach((n) => names.push(n));
  return names.filter((n) => typeof n === 'string');
}

// checkFunnels refuses a funnel member that is not one of funnelNames'.
function checkFunnels(q, funnelNames) {
  for (const name of memberNames(q)) {
    const [cube, member] = name.split('.');
    if (!FUNNEL_CUBE.test(cube)) continue;
    if (!funnelNames.includes(cube)) throw new UserError(`Cube '${cube}' not found for path '${name}'`);
    if (!FUNNEL_MEMBERS.includes(member)) throw new UserError(`'${member}' not found for path '${name}'`);
  }
}

// withFunnels is queryRewrite, also refusing funnel members the querying
// tenant does not have: funnelsOf(appId) lists (or resolves to) its
// funnels' names.
function withFunnels(funnelsOf) {
  return async (query, context) => {
    queryRewrite(query);
    const appId = context && context.securityContext && context.securityContext.appId;
    checkFunnels(query, (await funnelsOf(appId)) || []);
    return query;
  };
}

module.exports = {
  queryRewrite, withFunnels, checkFunnels, check, checkCall, Refusal, LIMITS, BUDGET,
};
