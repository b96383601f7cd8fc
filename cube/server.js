'use strict';

// Local Cube for the product analytics stack: Cube 0.33's core mounted on an
// express app (so it listens on loopback only unless told otherwise),
// querying one DuckDB file per project (tenantdb.js), or ClickHouse as each
// project's own user (clickhouse.js): each tenant's queries reach its own
// data only.
//
// Environment:
//   CUBEJS_API_SECRET           HS256 key of the tokens (required)
//   CUBE_DB_TYPE                duckdb (default) or clickhouse: each project's
//                               own ClickHouse user instead (clickhouse.js)
//   CUBE_DATA_DIR               folder of the projects' files, project_<id>.duckdb
//                               (required with duckdb)
//   CUBE_PORT                   port (default 4000; 0: any free one, printed)
//   CUBE_HOST                   address to listen on (default 127.0.0.1; 0.0.0.0 for
//                               containers such as `sam local`'s to reach it)
//   CUBE_CONTINUE_WAIT_TIMEOUT  seconds before Cube answers "Continue wait" (default 5)
//   CUBE_QUERY_GUARD            on (default) or off: queryguard.js checks every query;
//                               off only with CUBE_TEST_MODEL=1, to test the store alone
//   CUBE_TEST_MODEL=1           also load testmodel/ (the SlowEvents cube)
//   CUBE_TEST_SLOW_MS           how long SlowEvents queries take (default 3000)
//   CUBE_TEST_SLOW_REFRESH      SlowEvents' refresh key in seconds (default 0: a key that never changes)
//   CUBE_VERBOSE_LOG=1          also log Cube's per-query queue and cache steps, and
//                               the SQL of each query with its values
//   CUBE_MAX_TENANTS            tenants whose orchestrator and answers are kept (default 1000)
//   CUBE_TENANT_KEEP_ALIVE      seconds a tenant's orchestrator is kept unused (default 1200)
//   CUBE_MAX_OPEN_DATABASES     duckdb: tenants' databases open at once (default 16)
//   CUBE_DATABASE_KEEP_ALIVE    duckdb: seconds a tenant's database stays open unused (default 60)
//   CUBE_DATABASE_MEMORY_LIMIT  duckdb: memory limit of each tenant's database (default 256MB)
//   CUBE_DATABASE_MEMORY_MAX    duckdb: a large project's database gets a sixth of its file, up to
//                               this (default 2GB)
//   CUBE_DATABASE_MEMORY_EXTRA  duckdb: what open large databases take beyond the limit, all
//                               together (default 2GB); past it one opens with what is left
//   CUBE_TENANT_MAX_IN_FLIGHT   a tenant's requests Cube works on at once (default 4; 0: no limit)
//   CUBE_TENANT_MAX_QUEUED      a tenant's requests waiting for one of those (default 16)
//   CUBE_TENANT_QUEUE_WAIT      seconds one waits for its turn (default 3; 0: none waits): then a
//                               load is told to "Continue wait" (clients ask again), others get 429
//   CUBE_MAX_LARGE_ANSWERS      loads of more than CUBE_LARGE_ANSWER_CELLS cells (the guard's count)
//                               Cube builds at once, all projects together (default 2; 0: no bound);
//                               others wait as above, then "Continue wait"; past 64 waiting, 429
//   CUBE_LARGE_ANSWER_CELLS     the answer cells that make a load large (default 50000)
//   CUBE_RESULT_CACHE_MB        answers kept after they were sent, all projects (default: a fifth of the heap)
//   CUBE_RESULT_MAX_KB          the largest answer kept; larger ones are not cached (default: a sixteenth of the above)
//   CUBE_RESULT_PROJECT_MB      what one project's answers may take (default: a quarter of the whole)
//   CUBE_MEMORY_LOG_SECONDS     how often Cube logs its memory, "Cube memory" (default 30; 0: never)
//   CUBE_REFRESH_SECONDS        the cubes' refresh key: an answer asked after the key changed is
//                               renewed behind the answer (default 300)
//   CUBE_ANSWER_MAX_AGE         seconds an answer may be served from the cache at most (default 3600)
//   CUBE_FUNNELS_DIR            projects' funnel definitions, <dir>/<project id>/*.yml (funnels.js); or
//   CUBE_FUNNELS_S3_BUCKET      from s3://<bucket>/<CUBE_FUNNELS_S3_PREFIX, default funnels/><project id>/
//                               (CUBE_FUNNELS_S3_PATH_STYLE=1 for path-style addresses); or
//   CUBE_FUNNELS_GITLAB_URL     from each project's repository at its default branch, read with
//                               CUBE_FUNNELS_GITLAB_TOKEN (.gitlab/analytics/funnels/); none: no funnels
//   CUBE_FUNNELS_REFRESH        seconds a project's funnels are kept before they are read again (default 30)
//   CUBE_MAX_FUNNEL_MODELS      compiled models of projects with funnels kept at once (default 20, about
//                               3.3 MB each; past it the least recently used is compiled again when asked)

// Cube enforces its own token checks and hides its dev tooling only in
// production mode; this must be set before Cube is loaded.
process.env.NODE_ENV = process.env.NODE_ENV || 'production';
// Cube's SQL casts the UTC TIMESTAMP columns to TIMESTAMPTZ. DuckDB without
// its ICU extension (the npm binding does not bundle it, and loading it means
// a download) does that in the process's local zone, so run in UTC.
process.env.TZ = 'UTC';
// No pre-aggregations, hence no Cube Store: keep Cube from asking for one.
process.env.CUBEJS_EXTERNAL_DEFAULT = 'false';

const fs = require('fs');
const path = require('path');
const express = require('express');
const { CubejsServerCore } = require('@cubejs-backend/server-core');
const { CubejsHandlerError } = require('@cubejs-backend/api-gateway');
const {
  DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_MAX, DEFAULT_MEMORY_EXTRA, MEMORY_LIMIT, TenantDatabases, TenantDuckDBQuery,
} = require('./tenantdb');
const { TenantOrchestrators } = require('./orchestrators');
const front = require('./front');
const { renewBehindViews } = require('./renewal');
const { Funnels, FunnelRepository, sourceFromEnv } = require('./funnels');

const MODEL_DIRS = ['model'];
const TEST_MODEL_DIRS = ['testmodel'];

// Each store's tenant drivers, Cube's SQL dialect for it (Cube 0.33 has no
// DuckDB dialect: DuckDB accepts its Postgres SQL) and the name model/dialect.js
// reads as COMPILE_CONTEXT.sqlDialect.
const STORES = {
  duckdb: {
    drivers: (config) => new TenantDatabases({
      dataDir: config.dataDir,
      maxOpen: config.maxOpenDatabases,
      keepAliveMs: config.databaseKeepAliveMs,
      memoryLimit: config.databaseMemoryLimit,
      memoryMax: config.databaseMemoryMax,
      memoryExtra: config.databaseMemoryExtra,
      slowMs: config.testModel ? config.slowMs : 0,
      log: logger,
    }),
    dbType: 'postgres',
    // Postgres' SQL without a per-row time-zone conversion when the query's
    // zone is UTC, in which the events' times are stored (tenantdb.js).
    dialectClass: TenantDuckDBQuery,
    sqlDialect: 'duckdb',
  },
  clickhouse: {
    drivers: () => require('./clickhouse').ClickHouseTenants.fromEnv(process.env),
    dbType: 'clickhouse',
    sqlDialect: 'clickhouse',
  },
};

function fail(message) {
  console.error(`cube: ${message}`);
  process.exit(1);
}

function intEnv(name, fallback, min) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min) {
    fail(`${name} must be an integer >= ${min}, got '${raw}'`);
  }
  return Number(raw);
}

function memoryLimitEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!MEMORY_LIMIT.test(raw)) fail(`${name} must be a size such as 256MB, got '${raw}'`);
  return raw;
}

function readConfig() {
  const apiSecret = process.env.CUBEJS_API_SECRET;
  if (!apiSecret) fail('CUBEJS_API_SECRET is not set');
  const dbType = process.env.CUBE_DB_TYPE || 'duckdb';
  if (!STORES[dbType]) fail(`CUBE_DB_TYPE must be duckdb or clickhouse, got '${dbType}'`);
  const dataDir = process.env.CUBE_DATA_DIR;
  if (dbType === 'duckdb') {
    if (!dataDir) fail('CUBE_DATA_DIR is not set');
    let isDir = false;
    try {
      isDir = fs.statSync(dataDir).isDirectory();
    } catch (e) {
      fail(`CUBE_DATA_DIR ${dataDir}: ${e.message}`);
    }
    if (!isDir) fail(`CUBE_DATA_DIR ${dataDir} is not a folder`);
  }
  const testModel = process.env.CUBE_TEST_MODEL === '1';
  // SlowEvents is slow only on DuckDB, and the guard may be off only with it.
  if (testModel && dbType !== 'duckdb') fail('CUBE_TEST_MODEL=1 needs CUBE_DB_TYPE=duckdb');
  const guard = process.env.CUBE_QUERY_GUARD || 'on';
  if (guard !== 'on' && guard !== 'off') fail(`CUBE_QUERY_GUARD must be on or off, got '${guard}'`);
  if (guard === 'off' && !testModel) {
    fail('CUBE_QUERY_GUARD=off is for tests only and needs CUBE_TEST_MODEL=1: refusing to start without the query guard');
  }
  return {
    apiSecret,
    dbType,
    // Absolute, so that a tenant's file does not depend on the working folder.
    dataDir: dataDir && path.resolve(dataDir),
    port: intEnv('CUBE_PORT', 4000, 0),
    host: process.env.CUBE_HOST || '127.0.0.1',
    continueWaitTimeout: intEnv('CUBE_CONTINUE_WAIT_TIMEOUT', 5, 1),
    queryGuard: guard === 'on',
    testModel,
    slowMs: intEnv('CUBE_TEST_SLOW_MS', 3000, 0),
    slowRefreshSeconds: testModel ? intEnv('CUBE_TEST_SLOW_REFRESH', 0, 0) : 0,
    maxTenants: intEnv('CUBE_MAX_TENANTS', 1000, 1),
    tenantKeepAliveMs: intEnv('CUBE_TENANT_KEEP_ALIVE', 1200, 1) * 1000,
    // 0: the default, from the heap's size (resultcache.js).
    resultCacheMB: intEnv('CUBE_RESULT_CACHE_MB', 0, 0),
    resultMaxKB: intEnv('CUBE_RESULT_MAX_KB', 0, 0),
    resultProjectMB: intEnv('CUBE_RESULT_PROJECT_MB', 0, 0),
    memoryLogSeconds: intEnv('CUBE_MEMORY_LOG_SECONDS', 30, 0),
    refreshSeconds: intEnv('CUBE_REFRESH_SECONDS', 300, 1),
    answerMaxAgeSeconds: intEnv('CUBE_ANSWER_MAX_AGE', 3600, 1),
    maxOpenDatabases: intEnv('CUBE_MAX_OPEN_DATABASES', 16, 1),
    databaseKeepAliveMs: intEnv('CUBE_DATABASE_KEEP_ALIVE', 60, 1) * 1000,
    databaseMemoryLimit: memoryLimitEnv('CUBE_DATABASE_MEMORY_LIMIT', DEFAULT_MEMORY_LIMIT),
    databaseMemoryMax: memoryLimitEnv('CUBE_DATABASE_MEMORY_MAX', DEFAULT_MEMORY_MAX),
    databaseMemoryExtra: memoryLimitEnv('CUBE_DATABASE_MEMORY_EXTRA', DEFAULT_MEMORY_EXTRA),
    tenantMaxInFlight: intEnv('CUBE_TENANT_MAX_IN_FLIGHT', 4, 0),
    tenantMaxQueued: intEnv('CUBE_TENANT_MAX_QUEUED', 16, 0),
    tenantQueueWaitMs: intEnv('CUBE_TENANT_QUEUE_WAIT', 3, 0) * 1000,
    maxLargeAnswers: intEnv('CUBE_MAX_LARGE_ANSWERS', 2, 0),
    largeAnswerCells: intEnv('CUBE_LARGE_ANSWER_CELLS', 50000, 1),
    funnelsRefreshMs: intEnv('CUBE_FUNNELS_REFRESH', 30, 1) * 1000,
    maxFunnelModels: intEnv('CUBE_MAX_FUNNEL_MODELS', 20, 1),
  };
}

// Reads the data model from folders next to this file whatever the working
// directory (Cube's own FileRepository resolves against the cwd). Files keep
// bare names, so `import ... from './dialect'` works from every folder.
class ModelRepository {
  constructor(dirs) {
    this.dirs = dirs.map((dir) => path.join(__dirname, dir));
  }

  localPath() {
    return __dirname;
  }

  async dataSchemaFiles() {
    const files = [];
    for (const dir of this.dirs) {
      for (const name of fs.readdirSync(dir).sort()) {
        if (/\.(js|ya?ml)$/.test(name)) {
          files.push({ fileName: name, content: fs.readFileSync(path.join(dir, name), 'utf8') });
        }
      }
    }
    return files;
  }
}

// Checks each request's token; onTenant(appId) is told of each valid one.
function tokenChecker(apiSecret, onTenant) {
  // The cause (e.g. "jwt expired") goes to the log only, never to the client.
  const invalid = (cause) => new CubejsHandlerError(403, 'Forbidden', 'Invalid token', cause);
  // Cube has already taken the token out of "Authorization: [Bearer ]<jwt>".
  return (req, token) => {
    if (!token) {
      throw new CubejsHandlerError(403, 'Forbidden', 'Authorization header isn\'t set');
    }
    // The front verified it already, unless it was off or the token
    // differs (Cube reads the header as the front does).
    let payload = req.verifiedTenant && req.verifiedTenant.token === token ? req.verifiedTenant.payload : null;
    if (!payload) {
      try {
        payload = front.verifyTenantToken(token, apiSecret);
      } catch (e) {
        throw invalid(e);
      }
    }
    req.securityContext = payload;
    onTenant(payload.appId);
  };
}

// Cube's events as JSON lines on stdout. The token (Cube logs it with auth
// errors) and the security context (which may carry a GitLab access token)
// are never printed: only the tenant's appId is.
const NETWORK_EVENTS = new Set(['Incoming network usage', 'Outgoing network usage']);
// A dozen lines per query that matter only when debugging the queue or cache.
const QUEUE_AND_CACHE_EVENTS = new Set([
  'Added to queue', 'Waiting for query', 'Performing query', 'Performing query completed',
  'Query started', 'Query completed', 'Found cache entry', 'Missing cache for', 'Using cache for',
  'Renewed', 'Found in memory cache entry', 'Renewing existing key', 'Waiting for renew',
  'Query Rewrite', 'Query Rewrite completed', 'Load Request SQL', 'Executing SQL', 'REST API Request',
  'Skip processing', 'Skipping free processing lock', 'Finished waiting for query', 'Dropping Cache',
  'Removing orphaned query', 'Requested renew', 'Force no cache for',
]);
const VERBOSE = process.env.CUBE_VERBOSE_LOG === '1';
// Fields holding a query's SQL (kilobytes each) or its bound values (the
// callers' filter strings), at any depth: Cube's queue events nest the
// query inside. A string `query` is SQL; an object one is the REST query,
// which stays.
const SQL_FIELDS = new Set(['sql', 'params', 'values', 'query_values', 'queryKey', 'cacheKey']);

function withoutSql(value, depth = 0) {
  if (depth > 5 || value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    return value;
  }
  const out = {};
  for (const [key, v] of Object.entries(value)) {
    if (SQL_FIELDS.has(key) || (key === 'query' && typeof v === 'string')) continue;
    out[key] = withoutSql(v, depth + 1);
  }
  return out;
}

// Each line is bounded (front.boundedLine): a request's strings, however
// long, cost the log at most LOG_STRING characters each and LOG_LINE bytes
// a line; more with CUBE_VERBOSE_LOG, whose SQL is longer.
const LOG_BOUNDS = VERBOSE
  ? { maxString: front.VERBOSE_LOG_STRING, maxLine: front.VERBOSE_LOG_LINE }
  : { maxString: front.LOG_STRING, maxLine: front.LOG_LINE };

function logger(message, params = {}) {
  if (NETWORK_EVENTS.has(message) || (!VERBOSE && QUEUE_AND_CACHE_EVENTS.has(message))) return;
  const { token, securityContext, authInfo, ...all } = params;
  const rest = VERBOSE ? all : withoutSql(all);
  const appId = securityContext && securityContext.appId;
  console.log(front.boundedLine({ time: new Date().toISOString(), message, appId, ...rest }, LOG_BOUNDS));
}

function tenantOf({ securityContext }) {
  return `CUBE_APP_${securityContext && securityContext.appId}`;
}

// Every tenant's queries go through one compiled model: the model names the
// tenant's schema when it builds a query's SQL (model/dialect.js), not when
// it compiles, so compiling it per tenant would only repeat the same work
// and keep a copy per tenant.
const MODEL_APP_ID = 'CUBE_APP_gitlab_product_analytics';

// A project with funnels has a model of its own: the shared files and its
// funnel cubes (funnels.js), versioned by its funnels' hash, so that Cube
// compiles it again when they change. The others share MODEL_APP_ID's.
function funnelModels(funnels, repository) {
  const appIdOf = (context) => context && context.securityContext && context.securityContext.appId;
  return {
    contextToAppId: async (context) => {
      const appId = appIdOf(context);
      const { version } = await funnels.get(appId);
      return version ? `CUBE_APP_${appId}_funnels` : MODEL_APP_ID;
    },
    schemaVersion: (context) => funnels.cached(appIdOf(context)).version || 'shared',
    repositoryFactory: (context) => {
      const appId = appIdOf(context);
      return funnels.cached(appId).version ? new FunnelRepository(repository, funnels, appId) : repository;
    },
    // The set the model is compiled from is read first, here as in
    // contextToAppId: the guard runs before Cube asks for the model.
    funnelsOf: async (appId) => (await funnels.get(appId)).funnels.map((f) => f.name),
  };
}

async function main() {
  const config = readConfig();
  // No error of one request, caught or not, ends the process for every
  // tenant.
  front.protectProcess(logger);
  // A view after the refresh key changed is answered from the cache and
  // renewed behind it (renewal.js, cube/README.md "Refresh key").
  renewBehindViews();
  // Each tenant's database opens on its first query: a bad file fails that
  // project's queries, not the start.
  const store = STORES[config.dbType];
  let drivers;
  try {
    drivers = store.drivers(config);
  } catch (e) {
    fail(e.message);
  }
  const orchestrators = new TenantOrchestrators({
    max: config.maxTenants,
    keepAliveMs: config.tenantKeepAliveMs,
    log: logger,
    results: {
      maxBytes: config.resultCacheMB * 1024 * 1024,
      maxEntryBytes: config.resultMaxKB * 1024,
      tenantBytes: config.resultProjectMB * 1024 * 1024,
      maxAgeMs: config.answerMaxAgeSeconds * 1000,
    },
    memoryLogMs: config.memoryLogSeconds * 1000,
  });

  const dirs = config.testModel ? MODEL_DIRS.concat(TEST_MODEL_DIRS) : MODEL_DIRS;
  const repository = new ModelRepository(dirs);
  let source = null;
  try {
    source = sourceFromEnv(process.env);
  } catch (e) {
    fail(e.message);
  }
  const models = source
    ? funnelModels(new Funnels({ source, refreshMs: config.funnelsRefreshMs, log: logger }), repository)
    : null;
  const guardModule = config.queryGuard ? require('./queryguard') : null;

  const core = new CubejsServerCore({
    apiSecret: config.apiSecret,
    // A tenant's database opens while Cube checks the query and writes its
    // SQL, rather than after.
    checkAuth: tokenChecker(config.apiSecret, (appId) => drivers.prefetch && drivers.prefetch(appId)),
    // Every query through the same checks as the API's (queryguard.js): a
    // tenant holding a Cube token may send queries here directly. Off only
    // in test mode, to test the store's wall alone.
    // A tenant's own funnel members pass it; nobody else's.
    ...(guardModule ? { queryRewrite: models ? guardModule.withFunnels(models.funnelsOf) : guardModule.queryRewrite } : {}),
    // What the API uses, and no more: no GraphQL, no jobs.
    contextToApiScopes: async () => ['meta', 'data'],
    // Without a dialect class Cube uses its built-in one for dbType.
    dbType: store.dbType,
    dialectFactory: () => store.dialectClass || null,
    // One driver per tenant, on that tenant's data only; it must go with
    // contextToOrchestratorId below, or Cube shares pools, queues and its
    // result cache across tenants (cube-js/cube#4129).
    driverFactory: ({ securityContext }) => drivers.get(securityContext && securityContext.appId),
    repositoryFactory: models ? models.repositoryFactory : () => repository,
    // Read by the model as COMPILE_CONTEXT.sqlDialect and .refreshEvery.
    extendContext: () => ({
      sqlDialect: store.sqlDialect,
      refreshEvery: `${config.refreshSeconds} seconds`,
      testSlowRefreshEvery: config.slowRefreshSeconds ? `${config.slowRefreshSeconds} seconds` : '',
    }),
    // One compiled model for all, and one more per project with funnels;
    // one queue, cache and driver per project.
    contextToAppId: models ? models.contextToAppId : () => MODEL_APP_ID,
    ...(models ? {
      schemaVersion: models.schemaVersion,
      compilerCacheSize: 1 + config.maxFunnelModels,
      // A project's model goes once unused as long as its orchestrator.
      maxCompilerCacheKeepAlive: config.tenantKeepAliveMs,
      updateCompilerCacheKeepAlive: true,
    } : { compilerCacheSize: 1 }),
    contextToOrchestratorId: tenantOf,
    scheduledRefreshContexts: async () => [],
    scheduledRefreshTimer: false,
    cacheAndQueueDriver: 'memory',
    devServer: false,
    telemetry: false,
    logger,
    orchestratorOptions: {
      continueWaitTimeout: config.continueWaitTimeout,
      // Set explicitly: Cube would otherwise ask the Postgres driver, which
      // is not installed.
      queryCacheOptions: { queueOptions: { concurrency: 4 } },
      preAggregationsOptions: { queueOptions: { concurrency: 1 } },
    },
  });

  // Cube 0.33 keeps every orchestrator in a map of its own, without bound:
  // this storage drops the unused ones (orchestrators.js). Replaced before
  // the API gateway, which holds on to it, is built.
  core.orchestratorStorage = orchestrators;

  const app = express();
  // Before Cube's routes: only the routes clients need, bounded bodies, each
  // tenant's share of requests, a blend checked as a whole.
  const guard = guardModule || {};
  front.mountFront(app, {
    apiSecret: config.apiSecret,
    maxInFlight: config.tenantMaxInFlight,
    maxQueued: config.tenantMaxQueued,
    queueWaitMs: config.tenantQueueWaitMs,
    maxLargeAnswers: config.maxLargeAnswers,
    largeCells: config.largeAnswerCells,
    // checkCall is the guard's check of a whole call, where it has one.
    checkCall: typeof guard.checkCall === 'function' ? guard.checkCall : null,
    Refusal: guard.Refusal,
    log: logger,
  });
  await core.initApp(app);
  // After them: whatever error they leave over is answered, without a stack.
  front.mountBack(app, logger);

  if (config.testModel) {
    console.log(`cube test model loaded: SlowEvents queries take ${config.slowMs} ms`);
  }
  if (!config.queryGuard) {
    console.log('cube query guard OFF (CUBE_QUERY_GUARD=off, test mode): only the store isolates tenants');
  }
  const server = app.listen(config.port, config.host, () => {
    // The bound port, not the asked one: with 0, whoever started Cube reads it here.
    console.log(`cube listening on ${config.host}:${server.address().port}`);
  });
  // Longer than the API's idle connections (its Cube client keeps them 90 s):
  // Node's 5 s default closes a pooled connection after a long answer has
  // held the event loop, just as the API sends the next request on it.
  server.keepAliveTimeout = 95 * 1000;
  server.headersTimeout = 100 * 1000;
  server.on('error', (e) => fail(`cannot listen on ${config.host}:${config.port}: ${e.message}`));

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`cube stopping on ${signal}`);
    // Do not let a stuck shutdown step keep the process alive.
    setTimeout(() => process.exit(0), 3000).unref();
    server.close();
    server.closeAllConnections();
    try {
      await core.shutdown();
      await drivers.closeAll();
    } catch (e) {
      console.error(`cube: shutdown: ${e.message}`);
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e) => fail(e.stack || String(e)));
