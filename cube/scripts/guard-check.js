'use strict';

// Reads one Cube query per line (JSON) on stdin and prints, per line, the
// query guard's verdict on it as sent, and on it as Cube hands it to the
// guard (after Cube's own schema check and normalisation):
//   {"raw": {"ok": false, "field": "query.timezone"}, "normalized": {...}}
// "normalized" is {"cube": "<error>"} when Cube's own check refuses it first.
// Used by the test that holds the guard and the API's rules to one verdict.

const readline = require('readline');
const { check, Refusal } = require('../queryguard');
const { normalizeQuery } = require('@cubejs-backend/api-gateway/dist/src/query');

function verdict(query) {
  try {
    check(query);
    return { ok: true };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, field: e.field };
    return { ok: false, error: String(e && e.message) };
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  const query = JSON.parse(line);
  const out = { raw: verdict(query) };
  let normalized;
  try {
    normalized = normalizeQuery(JSON.parse(line), false);
  } catch (e) {
    out.normalized = { cube: String(e && e.message) };
  }
  if (normalized) out.normalized = verdict(normalized);
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
