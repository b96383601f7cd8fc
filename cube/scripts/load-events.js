#!/usr/bin/env node
'use strict';

// Loads each project's Snowplow events from a CSV file into a new DuckDB
// file of its own:
//
//   node load-events.js <db-file> <project-id>=<csv-file> [<db-file> <project-id>=<csv-file> ...]
//
// Several projects in one run save a Node.js start each (most of the time
// of a small project's load).
//
// The file gets the schema gitlab_project_<id> with the table from
// schema/snowplow_events.sql, its events in time order, and the tables built
// from them (DERIVED_TABLES: users, sessions, user_days, page_days); nothing else: one project
// per file, so that a tenant's connection to its file can reach no other
// project's events. Cube reads <data-dir>/project_<id>.duckdb (see
// ../tenantdb.js).
//
// Why this layout: the dashboards ask for date ranges. Events in
// derived_tstamp order let DuckDB skip every row group outside the range
// (its zone maps), sessions kept as a table spare each Sessions query the
// grouping of every event of the project, whose time and memory grow with
// the project's whole history (cube/model/Sessions.js), and users and
// pages by day spare most counts of users and of events reading every event
// (../rollups.js).
//
// A CSV (or gzip-compressed CSV, named .gz) has a header row naming exactly that table's columns in order,
// comma-separated fields with RFC 4180 quoting, UTC timestamps like
// 2026-11-20 13:45:12.123, and an empty unquoted field for NULL ("" is an
// empty string). The files must not exist yet; on any error the file being
// loaded is removed, so a failed load leaves no half-written file behind (the
// files loaded before it stay, and the run stops).
//
// LOAD_EVENTS_MEMORY_LIMIT bounds the loader's memory (default 2GB): a
// larger project's sort spills to <db-file>.tmp, removed when the load ends.

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { DuckDBInstance } = require('@duckdb/node-api');

const DDL_FILE = path.join(__dirname, '..', 'schema', 'snowplow_events.sql');
// Built from the events, in this order (each may read the ones before it).
const DERIVED_TABLES = ['users.sql', 'sessions.sql', 'user_days.sql', 'page_days.sql']
  .map((name) => path.join(__dirname, '..', 'schema', name));
const USAGE = 'usage: node load-events.js <db-file> <project-id>=<csv-file> [<db-file> <project-id>=<csv-file> ...]';

class UsageError extends Error {}

function parseArgs(argv) {
  if (argv.length === 0 || argv.length % 2 !== 0) throw new UsageError(USAGE);
  const loads = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [dbFile, pair] = argv.slice(i, i + 2);
    const match = /^([0-9]+)=(.+)$/.exec(pair);
    if (!match) throw new UsageError(`bad argument '${pair}', expected <project-id>=<csv-file>\n${USAGE}`);
    const [, id, csvFile] = match;
    if (!fs.existsSync(csvFile)) throw new UsageError(`CSV file ${csvFile} does not exist`);
    if (fs.existsSync(dbFile)) throw new UsageError(`${dbFile} exists: the loader writes a new file only`);
    loads.push({ dbFile, project: { schema: `gitlab_project_${Number(id)}`, csvFile } });
  }
  return loads;
}

function sqlString(text) {
  return `'${text.replace(/'/g, "''")}'`;
}

// Header names, unquoted; only the first line is read.
function csvHeader(csvFile) {
  const fd = fs.openSync(csvFile, 'r');
  try {
    let buf = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    buf = buf.subarray(0, n);
    // A gzip-compressed file (DuckDB reads it by its .gz): its start is
    // enough, decompressed as far as it goes.
    if (csvFile.endsWith('.gz')) buf = zlib.gunzipSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const line = buf.toString('utf8').replace(/^\uFEFF/, '').split(/\r?\n/)[0];
    return line.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1'));
  } finally {
    fs.closeSync(fd);
  }
}

// The events' order in the file: see the top of this file.
const TIME_ORDER = 'ORDER BY derived_tstamp, event_id';
// A CSV this large (or compressed) is sorted in parts (insertInParts).
const LARGE_CSV_BYTES = 1024 * 1024 * 1024;
// LOAD_EVENTS_PART_ROWS, the events per part (default 5 million): a
// part's sort stays within the loader's memory.
function partRowsLimit() {
  const v = process.env.LOAD_EVENTS_PART_ROWS || '5000000';
  if (!/^[1-9][0-9]{0,9}$/.test(v)) throw new UsageError(`LOAD_EVENTS_PART_ROWS must be a whole number of events, got '${v}'`);
  return Number(v);
}

function isLarge(csvFile) {
  return csvFile.endsWith('.gz') || fs.statSync(csvFile).size > LARGE_CSV_BYTES;
}

// Inserts a large project's events in time order, one part of the time
// range after another, each part sorted alone: sorting 100 million events
// at once would spill tens of gigabytes beside the file. The events are
// read once into a staging file, whose parts are then cut at quantiles of
// their time (approximate: any bounds give the same order, only the parts'
// sizes vary), and NULL times come last, as ORDER BY puts them.
async function insertInParts(connection, schema, source, staging) {
  await connection.run(`ATTACH ${sqlString(staging)} AS staging`);
  const partRows = partRowsLimit();
  try {
    await connection.run(`CREATE TABLE staging.events AS SELECT * FROM ${source}`);
    const counted = await connection.runAndReadAll('SELECT count(*) AS n FROM staging.events');
    const parts = Math.max(1, Math.ceil(Number(counted.getRowObjectsJS()[0].n) / partRows));
    let bounds = [];
    if (parts > 1) {
      const fractions = Array.from({ length: parts - 1 }, (_, i) => (i + 1) / parts);
      const reader = await connection.runAndReadAll(
        `SELECT CAST(unnest(approx_quantile(derived_tstamp, [${fractions.join(', ')}])) AS VARCHAR) AS b FROM staging.events`,
      );
      bounds = [...new Set(reader.getRowObjectsJS().map((row) => row.b).filter((b) => b !== null))].sort();
    }
    const conditions = [];
    let lower = null;
    for (const upper of [...bounds, null]) {
      const c = [
        lower === null ? 'derived_tstamp IS NOT NULL' : `derived_tstamp >= TIMESTAMP ${sqlString(lower)}`,
        upper === null ? null : `derived_tstamp < TIMESTAMP ${sqlString(upper)}`,
      ].filter(Boolean);
      conditions.push(c.join(' AND '));
      lower = upper;
    }
    conditions.push('derived_tstamp IS NULL');
    for (const where of conditions) {
      await connection.run(`INSERT INTO ${schema}.snowplow_events SELECT * FROM staging.events WHERE ${where} ${TIME_ORDER}`);
    }
  } finally {
    await connection.run('DETACH staging');
    remove(staging);
  }
}

async function loadProject(connection, ddl, { schema, csvFile }, staging) {
  const inSchema = (text) => text.replace(/\{\{schema\}\}/g, schema);
  await connection.run(`CREATE SCHEMA ${schema}`);
  await connection.run(inSchema(ddl.events));

  const described = await connection.runAndReadAll(`DESCRIBE ${schema}.snowplow_events`);
  const columns = described.getRowObjectsJS().map((row) => ({ name: row.column_name, type: row.column_type }));
  const expected = columns.map((c) => c.name);
  const header = csvHeader(csvFile);
  if (header.join(',') !== expected.join(',')) {
    throw new Error(`${csvFile}: header must be exactly\n  ${expected.join(',')}\nbut is\n  ${header.join(',')}`);
  }

  // Types come from the table, not from sniffing, so every file is read the
  // same way; allow_quoted_nulls=false keeps "" an empty string. Sorted by
  // time (then event_id, so that a file's layout depends on its events
  // only): see the top of this file.
  const columnTypes = columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(', ');
  const source = `read_csv(${sqlString(csvFile)},
      header = true, delim = ',', quote = '"', escape = '"',
      nullstr = '', allow_quoted_nulls = false,
      auto_detect = false, columns = {${columnTypes}})`;
  if (isLarge(csvFile)) {
    await insertInParts(connection, schema, source, staging);
  } else {
    await connection.run(`INSERT INTO ${schema}.snowplow_events SELECT * FROM ${source} ${TIME_ORDER}`);
  }
  for (const derived of ddl.derived) await connection.run(inSchema(derived));

  const count = await connection.runAndReadAll(`SELECT count(*) AS n FROM ${schema}.snowplow_events`);
  return Number(count.getRowObjectsJS()[0].n);
}

function remove(dbFile) {
  for (const f of [dbFile, `${dbFile}.wal`]) fs.rmSync(f, { force: true });
}

// LOAD_EVENTS_MEMORY_LIMIT, DuckDB's bound on the loader's memory: 2GB
// unless set (DuckDB's own default is 80 % of the machine).
function memoryLimit() {
  const limit = process.env.LOAD_EVENTS_MEMORY_LIMIT || '2GB';
  if (!/^[0-9]+(\.[0-9]+)?\s?(KB|MB|GB|KiB|MiB|GiB)$/.test(limit)) {
    throw new UsageError(`LOAD_EVENTS_MEMORY_LIMIT must be a size such as 2GB, got '${limit}'`);
  }
  return limit;
}

async function loadFile(ddl, { dbFile, project }) {
  let loaded;
  try {
    // Sorting a large project's events takes memory: within the bound,
    // DuckDB spills to <db-file>.tmp (removed when the load ends).
    const instance = await DuckDBInstance.create(dbFile, { memory_limit: memoryLimit(), temp_directory: `${dbFile}.tmp` });
    try {
      const connection = await instance.connect();
      try {
        loaded = await loadProject(connection, ddl, project, `${dbFile}.staging`);
        // Into the file itself, so that it travels without a WAL beside it.
        await connection.run('CHECKPOINT');
      } finally {
        connection.closeSync();
      }
    } finally {
      instance.closeSync();
    }
  } catch (e) {
    remove(dbFile);
    remove(`${dbFile}.staging`);
    e.message = `${project.schema} from ${project.csvFile}: ${e.message}`;
    throw e;
  } finally {
    fs.rmSync(`${dbFile}.tmp`, { recursive: true, force: true });
  }
  console.log(`loaded ${loaded} events into ${project.schema}`);
}

async function main() {
  const loads = parseArgs(process.argv.slice(2));
  const ddl = {
    events: fs.readFileSync(DDL_FILE, 'utf8'),
    derived: DERIVED_TABLES.map((file) => fs.readFileSync(file, 'utf8')),
  };
  for (const load of loads) await loadFile(ddl, load);
}

main().catch((e) => {
  console.error(`load-events: ${e instanceof UsageError ? e.message : `failed: ${e.message}`}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
