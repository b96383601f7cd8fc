#!/usr/bin/env node
'use strict';

// Runs SQL straight on a project's DuckDB file and times it: the anchor the
// API's times are compared with (make bench-data). Reads one JSON object on
// stdin:
//
//   {"cubeDir": "...", "file": "...", "threads": 1, "memoryLimit": "256MB",
//    "runs": 3, "statements": [{"name": "...", "sql": "...", "params": [...]}]}
//
// and prints one JSON object: for each statement the first run's time (in
// a new instance: the file just opened, as Cube's first query finds it),
// the best of the next runs, and the rows (arrays, in the columns' order); and the process's peak resident
// memory (VmHWM) beside its resident memory before the file was opened.
// The file is opened as Cube's tenant databases open theirs, on the threads
// and within the memory limit given.

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function residentKB(field) {
  const m = new RegExp(`^${field}:\\s+([0-9]+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function toJson(key, value) {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  return value;
}

async function timed(connection, sql, params) {
  const start = process.hrtime.bigint();
  const reader = await connection.runAndReadAll(sql, params);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, rows: reader.getRowsJS() };
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  // DuckDB converts TIMESTAMP to TIMESTAMPTZ in the process's zone; the
  // stored times are UTC, as Cube reads them.
  process.env.TZ = 'UTC';
  // Opened as Cube opens a tenant's file (cube/tenantdb.js): read-only,
  // locked down, no spilling to disk, on the threads and within the
  // memory given.
  const { openLocked } = createRequire(path.join(input.cubeDir, 'package.json'))('./tenantdb');
  const settings = { threads: input.threads || 1, memoryLimit: input.memoryLimit || '256MB' };
  const baseKB = residentKB('VmRSS');
  const out = { statements: [] };
  for (const st of input.statements) {
    const result = { name: st.name };
    // A new instance per statement: its first run reads the file as Cube's
    // first query after opening it does.
    const instance = await openLocked(input.file, settings);
    const connection = await instance.connect();
    try {
      const first = await timed(connection, st.sql, st.params || []);
      result.firstMs = first.ms;
      result.rows = first.rows;
      let best = Infinity;
      for (let i = 0; i < (input.runs || 3); i++) {
        best = Math.min(best, (await timed(connection, st.sql, st.params || [])).ms);
      }
      result.bestMs = Number.isFinite(best) ? best : first.ms;
    } catch (e) {
      result.error = e.message;
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
    out.statements.push(result);
  }
  out.baseRssBytes = baseKB * 1024;
  out.peakRssBytes = residentKB('VmHWM') * 1024;
  process.stdout.write(`${JSON.stringify(out, toJson)}\n`);
}

main().catch((e) => {
  console.error(`anchor: ${e.message}`);
  process.exit(1);
});
