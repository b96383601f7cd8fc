#!/usr/bin/env node
'use strict';

// Loads Snowplow events from CSV files into a DuckDB file, one schema per
// project:
//
//   node load-events.js <db-file> <project-id>=<csv-file> [...]
//
// Each project's schema gitlab_project_<id> is dropped and created again
// with the table from schema/snowplow_events.sql. A CSV has a header row
// naming exactly that table's columns in order, comma-separated fields with
// RFC 4180 quoting, UTC timestamps like 2026-11-20 13:45:12.123, and an
// empty unquoted field for NULL ("" is an empty string). Everything is loaded
// in one transaction: on any error the file is left as it was.
//
// DuckDB lets no other process hold the file meanwhile: stop Cube first.

const fs = require('fs');
const path = require('path');
const { DuckDBInstance } = require('@duckdb/node-api');

const DDL_FILE = path.join(__dirname, '..', 'schema', 'snowplow_events.sql');
const USAGE = 'usage: node load-events.js <db-file> <project-id>=<csv-file> [<project-id>=<csv-file> ...]';

class UsageError extends Error {}

function parseArgs(argv) {
  if (argv.length < 2) throw new UsageError(USAGE);
  const [dbFile, ...pairs] = argv;
  const projects = pairs.map((pair) => {
    const match = /^([0-9]+)=(.+)$/.exec(pair);
    if (!match) throw new UsageError(`bad argument '${pair}', expected <project-id>=<csv-file>\n${USAGE}`);
    const [, id, csvFile] = match;
    if (!fs.existsSync(csvFile)) throw new UsageError(`CSV file ${csvFile} does not exist`);
    return { schema: `gitlab_project_${Number(id)}`, csvFile };
  });
  const schemas = projects.map((p) => p.schema);
  const dup = schemas.find((s, i) => schemas.indexOf(s) !== i);
  if (dup) throw new UsageError(`${dup} is given twice`);
  return { dbFile, projects };
}

function sqlString(text) {
  return `'${text.replace(/'/g, "''")}'`;
}

// Header names, unquoted; only the first line is read.
function csvHeader(csvFile) {
  const fd = fs.openSync(csvFile, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const line = buf.toString('utf8', 0, n).replace(/^\uFEFF/, '').split(/\r?\n/)[0];
    return line.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1'));
  } finally {
    fs.closeSync(fd);
  }
}

async function loadProject(connection, ddl, { schema, csvFile }) {
  await connection.run(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await connection.run(`CREATE SCHEMA ${schema}`);
  await connection.run(ddl.replace(/\{\{schema\}\}/g, schema));

  const described = await connection.runAndReadAll(`DESCRIBE ${schema}.snowplow_events`);
  const columns = described.getRowObjectsJS().map((row) => ({ name: row.column_name, type: row.column_type }));
  const expected = columns.map((c) => c.name);
  const header = csvHeader(csvFile);
  if (header.join(',') !== expected.join(',')) {
    throw new Error(`${csvFile}: header must be exactly\n  ${expected.join(',')}\nbut is\n  ${header.join(',')}`);
  }

  // Types come from the table, not from sniffing, so every file is read the
  // same way; allow_quoted_nulls=false keeps "" an empty string.
  const columnTypes = columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(', ');
  await connection.run(`
    INSERT INTO ${schema}.snowplow_events
    SELECT * FROM read_csv(${sqlString(csvFile)},
      header = true, delim = ',', quote = '"', escape = '"',
      nullstr = '', allow_quoted_nulls = false,
      auto_detect = false, columns = {${columnTypes}})`);

  const count = await connection.runAndReadAll(`SELECT count(*) AS n FROM ${schema}.snowplow_events`);
  return Number(count.getRowObjectsJS()[0].n);
}

async function main() {
  const { dbFile, projects } = parseArgs(process.argv.slice(2));
  const ddl = fs.readFileSync(DDL_FILE, 'utf8');
  const instance = await DuckDBInstance.create(dbFile);
  const connection = await instance.connect();
  try {
    await connection.run('BEGIN TRANSACTION');
    const loaded = [];
    for (const project of projects) {
      try {
        loaded.push([project.schema, await loadProject(connection, ddl, project)]);
      } catch (e) {
        e.message = `${project.schema} from ${project.csvFile}: ${e.message}`;
        throw e;
      }
    }
    await connection.run('COMMIT');
    for (const [schema, n] of loaded) console.log(`loaded ${n} events into ${schema}`);
  } catch (e) {
    await connection.run('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

main().catch((e) => {
  console.error(`load-events: ${e instanceof UsageError ? e.message : `failed: ${e.message}`}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
