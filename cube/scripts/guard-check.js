'use strict';

// Reads one Cube call per line (JSON: a query, or an array of queries as a
// blend sends them) on stdin and prints, per line, the query guard's verdict
// on it as sent (checkCall, as Cube's front runs it before anything else),
// and on each query as Cube hands it to the guard's queryRewrite (after
// Cube's own schema check and normalisation, and after it has made one
// query per compared date range):
//   {"raw": {"ok": false, "field": "query.timezone"}, "normalized": {...}}
// "normalized" is {"cube": "<error>"} when Cube's own check refuses it first.
// Used by the test that holds the guard and the API's rules to one verdict.

const readline = require('readline');
const { checkCall, check, Refusal } = require('../queryguard');
const { ApiGateway } = require('@cubejs-backend/api-gateway');
const { normalizeQuery } = require('@cubejs-backend/api-gateway/dist/src/query');

function verdict(fn) {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, field: e.field };
    return { ok: false, error: String(e && e.message) };
  }
}

// normalized is what queryRewrite is called with for a call, as Cube's
// getNormalizedQueries makes it: a blend's queries, or a query's one per
// compared date range, each normalised.
function normalized(call) {
  const queries = Array.isArray(call)
    ? call
    : [].concat(ApiGateway.prototype.compareDateRangeTransformer.call(null, call));
  return queries.map((q) => normalizeQuery(q, false));
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  const call = JSON.parse(line);
  const out = { raw: verdict(() => checkCall(Array.isArray(call) ? call : [call], Array.isArray(call))) };
  let queries;
  try {
    queries = normalized(JSON.parse(line));
  } catch (e) {
    out.normalized = { cube: String(e && e.message) };
  }
  if (queries) out.normalized = verdict(() => queries.forEach((q) => check(q)));
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
