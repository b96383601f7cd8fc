'use strict';

// Each tenant's DuckDB connection sees that tenant's events and nothing else.
// This is the third of the three walls between tenants (DESIGN.md): it has
// to hold even when SQL injected through a query string runs.
//
// - Storage: one file per project, <data-dir>/project_<id>.duckdb, holding
//   only the schema gitlab_project_<id>. A tenant's driver opens only its own
//   file. (Not gitlab_project_<id>.duckdb: DuckDB names the file's catalog
//   after the file, and a catalog gitlab_project_<id> beside the schema of
//   that name makes gitlab_project_<id>.snowplow_events ambiguous.)
// - Lockdown: the file is opened read-only, with every way out of it off
//   (LOCKDOWN), and the configuration locked so that SQL cannot turn any of
//   it back on.
// - Statement gate: the driver runs one SELECT at a time and refuses table
//   functions (checkStatement). DuckDB leaves two ways around the lockdown
//   that only this closes: an open database's own file and WAL stay
//   readable and writable (COPY ... TO '<file>.wal' creates the WAL), and a
//   few table functions change the instance whatever the lock says:
//   enable_logging() with a file storage makes every later statement fail
//   and the process abort when the connection closes, taking every tenant
//   down.
//
// A project without a file gets an empty in-memory database, locked the same
// way: its queries fail as "Schema with name gitlab_project_<id> does not
// exist", which the API answers as 404, and no file is created.

const fs = require('fs');
const path = require('path');
const { DuckDBDriver } = require('@cubejs-backend/duckdb-driver');
const { DuckDBInstance } = require('@duckdb/node-api');

const APP_ID = /^gitlab_project_([0-9]+)$/;
// Kept in step with the comment in testmodel/SlowEvents.js.
const SLOW_MARKER = '/* cube-test-slow-query */';

// Set when the instance is created. Their effect in DuckDB 1.5, checked by
// test/isolation:
const LOCKDOWN = Object.freeze({
  // No temporary directory: DuckDB would allow it too (a relative .tmp
  // shared by every in-memory database), and spill queries' data there.
  // Queries larger than memory fail instead. First: DuckDB refuses to set
  // it once external access is off.
  temp_directory: '',
  // read_text/read_csv/read_blob/glob/read_duckdb, COPY TO, EXPORT and
  // IMPORT DATABASE, ATTACH, INSTALL, LOAD of an extension file, persistent
  // secrets and scans of a file path (FROM '/etc/passwd') fail with "file
  // system operations are disabled by configuration". The database's own
  // file and WAL stay allowed (DuckDB adds them to allowed_paths).
  enable_external_access: 'false',
  // No extension loaded or fetched behind a query's back (httpfs for a URL).
  autoload_known_extensions: 'false',
  autoinstall_known_extensions: 'false',
  allow_community_extensions: 'false',
  allow_unsigned_extensions: 'false',
  // Every SET, RESET and PRAGMA that would change a setting fails from here
  // on, including the ones above and allowed_directories/allowed_paths.
  lock_configuration: 'true',
});

// Table functions the gate lets through: they compute rows from their
// arguments and touch nothing else. Cube's Postgres SQL may use
// generate_series for time series.
const PURE_TABLE_FUNCTIONS = new Set(['generate_series', 'range', 'unnest']);
// How many statements the gate remembers as passed, per tenant: Cube sends
// the same SQL again with other parameters, and the check costs a round trip.
const GATE_MEMORY = 500;

function projectIdOf(appId) {
  const match = APP_ID.exec(String(appId));
  if (!match) throw new Error('securityContext.appId must look like gitlab_project_<id>');
  return match[1];
}

// The project's file in dataDir. The id is used as written: gitlab_project_01
// is project_01.duckdb, which nothing creates, never project_1.duckdb.
function projectFile(dataDir, appId) {
  return path.join(dataDir, `project_${projectIdOf(appId)}.duckdb`);
}

// Opens file read-only, or an empty in-memory database when file is null;
// both locked down. DuckDB refuses a read-only in-memory database, and an
// empty one has nothing to protect; the gate keeps SQL from creating
// anything in it. No path rather than ':memory:', which DuckDB takes for a
// file name when it allows the database's own paths: ':memory:.wal' in the
// working folder would be writable.
async function openLocked(file) {
  if (!file) return DuckDBInstance.create(undefined, { ...LOCKDOWN });
  return DuckDBInstance.create(file, { ...LOCKDOWN, access_mode: 'READ_ONLY' });
}

class RefusedStatement extends Error {}

// Why sql must not run, or null. DuckDB's own parser reads it
// (json_serialize_sql, which serializes SELECT statements only), so that
// case, quoting, comments or escapes cannot hide a statement or a function
// from the check.
async function checkStatement(connection, sql) {
  const reader = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS tree', [sql]);
  const parsed = JSON.parse(reader.getRowObjectsJS()[0].tree);
  if (parsed.error) {
    // Anything but a SELECT cannot be serialized; a parser error is its own.
    return /^only select/i.test(parsed.error_message) ? 'only SELECT statements are run' : parsed.error_message;
  }
  if (parsed.statements.length !== 1) return `only one statement is run, got ${parsed.statements.length}`;
  const refused = [];
  const visit = (node) => {
    if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node && typeof node === 'object') {
      if (node.type === 'TABLE_FUNCTION') {
        const name = String(node.function && node.function.function_name).toLowerCase();
        if (!PURE_TABLE_FUNCTIONS.has(name)) refused.push(name);
      }
      Object.values(node).forEach(visit);
    }
  };
  visit(parsed.statements);
  return refused.length ? `table function ${refused.join(', ')} is not allowed` : null;
}

// One tenant's DuckDB: its own file (or an empty database), one query at a
// time on one connection, since a DuckDB connection runs one statement at
// once and Cube's queue may hand over several. Closing it is safe while Cube
// still holds it: the next query opens the database again.
class TenantDuckDBDriver extends DuckDBDriver {
  constructor({ file, slowMs = 0 }) {
    super({});
    this.file = file;
    this.slowMs = slowMs;
    this.inMemory = false;
    this.tail = Promise.resolve();
    // Statements the gate passed: its verdict depends on the text alone.
    // Refusals are checked again each time.
    this.passed = new Set();
  }

  async init() {
    const file = fs.existsSync(this.file) ? this.file : null;
    const instance = await openLocked(file);
    try {
      const defaultConnection = await instance.connect();
      this.inMemory = !file;
      return { instance, defaultConnection };
    } catch (e) {
      instance.closeSync();
      throw e;
    }
  }

  // Runs fn after everything queued before it, alone.
  serially(fn) {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  async query(sql, values, options) {
    // The test cube's delay is spent outside the queue so that it does not
    // hold up other queries.
    if (this.slowMs > 0 && sql.includes(SLOW_MARKER)) {
      await new Promise((resolve) => setTimeout(resolve, this.slowMs));
    }
    return this.serially(async () => {
      // Data generated after the project's first query is picked up.
      if (this.inMemory && fs.existsSync(this.file)) await super.release();
      const { defaultConnection } = await this.getInitiatedState();
      if (!this.passed.has(sql)) {
        const refusal = await checkStatement(defaultConnection, sql);
        if (refusal) throw new RefusedStatement(`Query refused by the events store: ${refusal}`);
        if (this.passed.size >= GATE_MEMORY) this.passed.clear();
        this.passed.add(sql);
      }
      return super.query(sql, values, options);
    });
  }

  // Streams would run on a connection of their own, around the queue and
  // the gate; nothing here needs them (no pre-aggregations).
  async stream() {
    throw new Error('streaming queries are not supported by this deployment');
  }

  // Cube releases drivers when it drops an orchestrator; TenantDrivers owns
  // them and closes them itself.
  async release() {}

  close() {
    return this.serially(() => super.release());
  }
}

// The tenants' drivers, one per appId, created on first use and kept until
// closed. Every tenant's open database lives here, so bounding how many stay
// open is a matter of closing some in this one place.
class TenantDrivers {
  constructor({ dataDir, slowMs = 0 }) {
    this.dataDir = dataDir;
    this.slowMs = slowMs;
    this.drivers = new Map();
  }

  get(appId) {
    const file = projectFile(this.dataDir, appId); // validates appId
    let driver = this.drivers.get(appId);
    if (!driver) {
      driver = new TenantDuckDBDriver({ file, slowMs: this.slowMs });
      this.drivers.set(appId, driver);
    }
    return driver;
  }

  get size() {
    return this.drivers.size;
  }

  async close(appId) {
    const driver = this.drivers.get(appId);
    if (!driver) return;
    this.drivers.delete(appId);
    await driver.close();
  }

  async closeAll() {
    const drivers = [...this.drivers.values()];
    this.drivers.clear();
    const results = await Promise.allSettled(drivers.map((d) => d.close()));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) throw new Error(`closing ${failed.length} tenant databases: ${failed[0].reason.message}`);
  }
}

module.exports = {
  APP_ID, LOCKDOWN, PURE_TABLE_FUNCTIONS, SLOW_MARKER,
  projectFile, openLocked, checkStatement, RefusedStatement, TenantDuckDBDriver, TenantDrivers,
};
