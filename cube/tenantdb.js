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
//
// Many tenants share one Cube process, so a tenant's database is open only
// while it is used (TenantDatabases): at most a set number at once, least
// recently used closed first, and each closed after a while unused. Each
// runs on one thread (a large project's on two, LARGE_FILE_BYTES) within a
// memory limit of its own, and reopens on its next query.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { DuckDBDriver } = require('@cubejs-backend/duckdb-driver');
const { DuckDBInstance } = require('@duckdb/node-api');
const { rollupFor, renderCount } = require('./rollups');
// The schema compiler Cube's server runs (the DuckDB driver brings another
// version of it), so that the dialect below extends the class Cube uses.
const { PostgresQuery } = require(require.resolve('@cubejs-backend/schema-compiler', {
  paths: [path.dirname(require.resolve('@cubejs-backend/server-core'))],
}));

const APP_ID = /^gitlab_project_([0-9]+)$/;
// The tables the loader builds from the events (scripts/load-events.js),
// which the model reads.
const DERIVED_TABLES = ['users', 'sessions', 'user_days', 'page_days'];
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

// What one tenant's instance may use. DuckDB's defaults (a thread per core,
// 80 % of the machine's memory) are made for one database per process.
const DEFAULT_MEMORY_LIMIT = '256MB';
// A project's database runs on one thread, and a large one's on up to two:
// one tenant's queries run one at a time (its queue), so a thread per
// database leaves a core idle while a large project's dashboard opens, and
// a small project's queries are over before a second thread would help.
// The memory limit stays the instance's, whatever its threads. 256 MiB of
// file is about 3 million events (cmd/demodata's: 10 million in 750 MiB).
const LARGE_FILE_BYTES = 256 * 1024 * 1024;
const LARGE_THREADS = Math.min(2, os.availableParallelism());
const MEMORY_LIMIT = /^([0-9]+(?:\.[0-9]+)?)\s?(KB|MB|GB|KiB|MiB|GiB)$/;
// A large project's database may use more memory: a sixth of its file,
// between the limit and DEFAULT_MEMORY_MAX. Exact distinct counts over
// months of a large project hash millions of users: at 100 million events
// (a 7.4 GiB file, 7.3 million users) 90 days of daily users need about
// 1 GB, and fail within 512 MB. Up to 1.5 GiB of file (about 20 million
// events) the limit is unchanged. What large databases take beyond the
// limit is bounded for all of them together, DEFAULT_MEMORY_EXTRA: past it
// a large database opens with what is left, down to the limit.
const DEFAULT_MEMORY_MAX = '2GB';
const DEFAULT_MEMORY_EXTRA = '2GB';
const MEMORY_PER_FILE_BYTE = 1 / 6;
const UNITS = { KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

// The bytes a DuckDB size (MEMORY_LIMIT) names.
function sizeBytes(size) {
  const m = MEMORY_LIMIT.exec(size);
  if (!m) throw new Error(`memory limit '${size}' is not a size such as 256MB`);
  return Number(m[1]) * UNITS[m[2]];
}

// The memory limit of a database whose file has fileBytes, as a DuckDB size.
function memoryFor(fileBytes, limit = DEFAULT_MEMORY_LIMIT, max = DEFAULT_MEMORY_MAX) {
  const base = sizeBytes(limit);
  const grown = Math.min(sizeBytes(max), fileBytes * MEMORY_PER_FILE_BYTE);
  return grown > base ? `${Math.ceil(grown / 1e6)}MB` : limit;
}

// What a database that wants want (memoryFor's) is given when the open
// large databases already take usedExtra bytes beyond limit, of extra
// bytes for them all.
function grantMemory(want, limit, extra, usedExtra) {
  const base = sizeBytes(limit);
  const more = sizeBytes(want) - base;
  const room = sizeBytes(extra) - usedExtra;
  if (more <= 0 || room <= 0) return limit;
  return more <= room ? want : `${Math.floor((base + room) / 1e6)}MB`;
}

// Table functions the gate lets through: they compute rows from their
// arguments and touch nothing else. Cube's Postgres SQL may use
// generate_series for time series.
const PURE_TABLE_FUNCTIONS = new Set(['generate_series', 'range', 'unnest']);
// How many statements the gate remembers as passed, per open database: Cube
// sends the same SQL again with other parameters, and the check costs a
// round trip. A project's dashboards are about 15 statements; the bound
// keeps the open databases' memories to a few MB in all.
const GATE_MEMORY = 100;

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
// both locked down, on threads threads (one unless told), within
// memoryLimit. DuckDB refuses a
// read-only in-memory database, and an empty one has nothing to protect;
// the gate keeps SQL from creating anything in it. No path rather than
// ':memory:', which DuckDB takes for a file name when it allows the
// database's own paths: ':memory:.wal' in the working folder would be
// writable.
async function openLocked(file, { memoryLimit = DEFAULT_MEMORY_LIMIT, threads = 1 } = {}) {
  if (!MEMORY_LIMIT.test(memoryLimit)) throw new Error(`memory limit '${memoryLimit}' is not a size such as 256MB`);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  const settings = { ...LOCKDOWN, threads: String(threads), memory_limit: memoryLimit };
  if (!file) return DuckDBInstance.create(undefined, settings);
  return DuckDBInstance.create(file, { ...settings, access_mode: 'READ_ONLY' });
}

// Cube's SQL for the tenants' DuckDB files: its Postgres dialect (which
// DuckDB accepts), less one conversion per row. The files store times as
// UTC TIMESTAMPs; Postgres' dialect groups a time by day as
// (t::timestamptz AT TIME ZONE '<zone>'), which in UTC gives t back, after
// two time-zone conversions of every row that cost DuckDB more than the
// rest of a dashboard's query (model/dialect.js spares the date filter's
// the same way). Other zones keep Postgres' conversion. Cube's dialectFactory
// hands it to Cube for the duckdb store.
// It also reads the store's rollup where a query's answer is the same from
// it (rollups.js).
class TenantDuckDBQuery extends PostgresQuery {
  convertTz(field) {
    return this.timezone === 'UTC' ? field : super.convertTz(field);
  }

  cubeSql(cube) {
    const chosen = this.rollupOf(cube);
    return chosen ? chosen.from : super.cubeSql(cube);
  }

  renderSqlMeasure(name, evaluateSql, symbol, cubeName, parentMeasure) {
    const rendered = super.renderSqlMeasure(name, evaluateSql, symbol, cubeName, parentMeasure);
    const chosen = symbol.type === 'count' && this.rollupOf(cubeName);
    return chosen ? renderCount(chosen.rollup, this.cubeAlias(cubeName), rendered, evaluateSql) : rendered;
  }

  // The rollup cube reads for this query, or null; decided once a query.
  rollupOf(cube) {
    if (!this.rollups) this.rollups = new Map();
    if (!this.rollups.has(cube)) this.rollups.set(cube, rollupFor(this, cube, super.cubeSql(cube)));
    return this.rollups.get(cube);
  }
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

// One tenant's database while it is open: its instance and connection, the
// queue of its statements (a DuckDB connection runs one at once, and Cube's
// queue may hand over several), and the statements its gate passed.
class TenantDatabase {
  constructor(appId, file) {
    this.appId = appId;
    this.file = file;
    this.state = null; // { instance, defaultConnection } once open
    this.inMemory = false;
    this.tail = Promise.resolve();
    // Statements the gate passed: its verdict depends on the text alone.
    // Refusals are checked again each time.
    this.passed = new Set();
    this.busy = 0; // runs queued or running
    this.lastUsed = Date.now();
  }

  // Runs fn after everything queued before it, alone.
  serially(fn) {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  async open(memoryFor, threadsFor) {
    // Data generated after the project's first query is picked up.
    if (this.state && this.inMemory && fs.existsSync(this.file)) this.close();
    if (this.state) return false;
    const file = fs.existsSync(this.file) ? this.file : null;
    const bytes = file ? fs.statSync(file).size : 0;
    this.threads = file ? threadsFor(bytes) : 1;
    // Held from here, so that another database opening meanwhile counts
    // it (memoryFor sums the held limits of the others), until close.
    this.memoryLimit = null;
    this.memoryLimit = memoryFor(bytes);
    let instance;
    try {
      instance = await openLocked(file, { memoryLimit: this.memoryLimit, threads: this.threads });
      this.state = { instance, defaultConnection: await instance.connect() };
    } catch (e) {
      if (instance) instance.closeSync();
      this.memoryLimit = null;
      throw e;
    }
    this.inMemory = !file;
    return true;
  }

  // Whether the file has every table the loader builds from the events
  // (DERIVED_TABLES); files loaded by an older loader have not.
  async hasDerivedTables() {
    const reader = await this.state.defaultConnection.runAndReadAll(
      `SELECT count(*) AS n FROM duckdb_tables() WHERE schema_name = $1 AND table_name IN (${DERIVED_TABLES.map((t) => `'${t}'`).join(', ')})`,
      [this.appId],
    );
    return Number(reader.getRowObjectsJS()[0].n) === DERIVED_TABLES.length;
  }

  async admit(sql) {
    if (this.passed.has(sql)) return;
    const refusal = await checkStatement(this.state.defaultConnection, sql);
    if (refusal) throw new RefusedStatement(`Query refused by the events store: ${refusal}`);
    if (this.passed.size >= GATE_MEMORY) this.passed.clear();
    this.passed.add(sql);
  }

  close() {
    if (!this.state) return;
    const { instance, defaultConnection } = this.state;
    this.state = null;
    this.memoryLimit = null;
    this.passed.clear();
    try {
      defaultConnection.closeSync();
    } finally {
      instance.closeSync();
    }
  }
}

// The tenants' open databases, one per appId, opened on a query and closed
// when unused for keepAliveMs, when more than maxOpen are open (least
// recently used first), when Cube drops the tenant, or on closeAll. Only a
// database with nothing queued is closed: a burst of more tenants than
// maxOpen keeps theirs open until their queries are done. get hands Cube a
// driver per tenant.
class TenantDatabases {
  constructor({
    dataDir, maxOpen = 16, keepAliveMs = 60000, memoryLimit = DEFAULT_MEMORY_LIMIT, memoryMax = DEFAULT_MEMORY_MAX,
    memoryExtra = DEFAULT_MEMORY_EXTRA, slowMs = 0, log = () => {}, largeFileBytes = LARGE_FILE_BYTES, largeThreads = LARGE_THREADS,
  }) {
    for (const size of [memoryLimit, memoryMax, memoryExtra]) {
      if (!MEMORY_LIMIT.test(size)) throw new Error(`memory size '${size}' is not a size such as 256MB`);
    }
    // A large project's database gets more memory (see DEFAULT_MEMORY_MAX),
    // within what the open ones take beyond the limit together.
    const base = sizeBytes(memoryLimit);
    this.memoryFor = (bytes) => {
      let used = 0;
      for (const db of this.databases.values()) {
        if (db.memoryLimit) used += Math.max(0, sizeBytes(db.memoryLimit) - base);
      }
      return grantMemory(memoryFor(bytes, memoryLimit, memoryMax), memoryLimit, memoryExtra, used);
    };
    if (!Number.isInteger(largeThreads) || largeThreads < 1) throw new Error(`largeThreads must be a positive integer, got ${largeThreads}`);
    // A large project's database gets more threads (see LARGE_FILE_BYTES).
    this.threadsFor = (bytes) => (bytes >= largeFileBytes ? largeThreads : 1);
    this.dataDir = dataDir;
    this.slowMs = slowMs;
    this.maxOpen = maxOpen;
    this.keepAliveMs = keepAliveMs;
    this.memoryLimit = memoryLimit;
    this.log = log;
    // Least recently used first: a Map keeps insertion order.
    this.databases = new Map();
    // Closes under way, which a reopening of the same file waits for.
    this.closing = new Map();
    this.timer = setInterval(() => this.closeIdle(), Math.max(250, Math.min(keepAliveMs / 4, 30000)));
    this.timer.unref();
  }

  get size() {
    return this.databases.size;
  }

  // A driver for appId's queries (Cube's driverFactory).
  get(appId) {
    return new TenantDuckDBDriver({ databases: this, appId, slowMs: this.slowMs });
  }

  // Runs fn(database) alone on appId's database, opened for it if need be.
  async run(appId, fn) {
    const file = projectFile(this.dataDir, appId); // validates appId
    let db = this.databases.get(appId);
    if (db) {
      this.databases.delete(appId);
    } else {
      db = new TenantDatabase(appId, file);
    }
    this.databases.set(appId, db);
    db.busy++;
    // Room for it first, when another is unused.
    this.closeOverLimit();
    try {
      return await db.serially(async () => {
        await this.closing.get(appId);
        if (await db.open(this.memoryFor, this.threadsFor)) {
          this.log('Tenant database opened', {
            tenant: appId, inMemory: db.inMemory, threads: db.threads, memoryLimit: db.memoryLimit, open: this.databases.size,
          });
          if (!db.inMemory && !(await db.hasDerivedTables())) {
            // Its queries fail with DuckDB's "Table with name ... does not
            // exist": say why once, where operators look.
            this.log(`Tenant database predates the tables ${DERIVED_TABLES.join(', ')}: load its events again (cmd/demodata or scripts/load-events.js)`, { tenant: appId });
          }
        }
        return fn(db);
      });
    } finally {
      db.busy--;
      db.lastUsed = Date.now();
      this.closeOverLimit();
    }
  }

  // Opens appId's database in the background, unless it is open: a query
  // for it is coming.
  prefetch(appId) {
    if (this.databases.has(appId)) return;
    this.run(appId, () => undefined).catch(() => {});
  }

  // The open state of appId's database, for its driver while it runs.
  opened(appId) {
    const db = this.databases.get(appId);
    if (!db || !db.state) throw new Error(`${appId}'s database is not open`);
    return db.state;
  }

  closeOverLimit() {
    for (const db of this.databases.values()) {
      if (this.databases.size <= this.maxOpen) return;
      if (db.busy === 0) this.close(db, 'limit');
    }
  }

  closeIdle() {
    const before = Date.now() - this.keepAliveMs;
    for (const db of [...this.databases.values()]) {
      if (db.busy === 0 && db.lastUsed < before) this.close(db, 'idle');
    }
  }

  // Closes appId's database if nothing is queued on it: Cube has dropped the
  // tenant.
  release(appId) {
    const db = this.databases.get(appId);
    if (db && db.busy === 0) this.close(db, 'released');
  }

  close(db, reason) {
    if (this.databases.get(db.appId) !== db) return this.closing.get(db.appId);
    this.databases.delete(db.appId);
    const done = db.serially(() => db.close())
      .then(() => this.log('Tenant database closed', { tenant: db.appId, reason, open: this.databases.size }))
      .catch((e) => this.log('Tenant database close failed', { tenant: db.appId, reason, error: e.message }))
      .finally(() => {
        if (this.closing.get(db.appId) === done) this.closing.delete(db.appId);
      });
    this.closing.set(db.appId, done);
    return done;
  }

  async closeAll() {
    clearInterval(this.timer);
    const dbs = [...this.databases.values()];
    await Promise.all(dbs.map((db) => this.close(db, 'shutdown')));
    await Promise.all([...this.closing.values()]);
  }
}

// The driver Cube gets for a tenant (driverFactory): it runs the tenant's
// queries on that tenant's database in TenantDatabases, through the gate.
// Cube keeps it for as long as it keeps the tenant's orchestrator, and
// releases it when it drops that.
class TenantDuckDBDriver extends DuckDBDriver {
  constructor({ databases, appId, slowMs = 0 }) {
    super({});
    projectIdOf(appId);
    this.databases = databases;
    this.appId = appId;
    this.slowMs = slowMs;
  }

  // The base class runs each query on this state's connection.
  async getInitiatedState() {
    return this.databases.opened(this.appId);
  }

  async query(sql, values, options) {
    // The test cube's delay is spent outside the queue so that it does not
    // hold up other queries.
    if (this.slowMs > 0 && sql.includes(SLOW_MARKER)) {
      await new Promise((resolve) => setTimeout(resolve, this.slowMs));
    }
    return this.databases.run(this.appId, async (db) => {
      await db.admit(sql);
      return super.query(sql, values, options);
    });
  }

  // Cube tests a driver when it creates it: opening the database is the
  // test, without a statement through the gate and the queue.
  async testConnection() {
    await this.databases.run(this.appId, () => undefined);
  }

  // Streams would run on a connection of their own, around the queue and
  // the gate; nothing here needs them (no pre-aggregations).
  async stream() {
    throw new Error('streaming queries are not supported by this deployment');
  }

  async release() {
    this.databases.release(this.appId);
  }
}

module.exports = {
  APP_ID, LOCKDOWN, PURE_TABLE_FUNCTIONS, SLOW_MARKER, DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_MAX, DEFAULT_MEMORY_EXTRA,
  MEMORY_LIMIT, memoryFor, grantMemory,
  projectFile, openLocked, checkStatement, RefusedStatement, TenantDuckDBDriver, TenantDatabases, TenantDuckDBQuery,
};
