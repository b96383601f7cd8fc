#!/usr/bin/env node
'use strict';

// Runs one SQL statement against a DuckDB file opened read-only and prints
// the rows as a JSON array of objects:
//
//   node query.js <db-file> "<sql>"
//
// Read-only, so it can run while Cube has the same file open. Times are read
// in UTC and printed as ISO strings; integers that fit a double are JSON
// numbers, larger ones strings.

// DuckDB converts TIMESTAMP to TIMESTAMPTZ in the process's zone (it has no
// ICU extension here); the stored times are UTC.
process.env.TZ = 'UTC';

const { DuckDBInstance } = require('@duckdb/node-api');

function toJson(key, value) {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  return value;
}

async function main() {
  const [dbFile, sql, ...rest] = process.argv.slice(2);
  if (!dbFile || !sql || rest.length) {
    console.error('usage: node query.js <db-file> "<sql>"');
    process.exit(2);
  }
  const instance = await DuckDBInstance.create(dbFile, { access_mode: 'READ_ONLY' });
  const connection = await instance.connect();
  try {
    const result = await connection.runAndReadAll(sql);
    process.stdout.write(`${JSON.stringify(result.getRowObjectsJS(), toJson)}\n`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

main().catch((e) => {
  console.error(`query: ${e.message}`);
  process.exit(1);
});
