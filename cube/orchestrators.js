'use strict';

// Cube's per-tenant orchestrators, kept only while their tenants use them.
//
// A per-tenant driver needs an orchestrator per tenant (cube-js/cube#4129):
// its queue, its result cache and its driver. Cube 0.33 keeps every one it
// ever made, in a plain map (server-core's OrchestratorStorage), and the
// answers they cache stay in one process-wide object (the "memory" cache
// driver's store) until the process ends, read again or not. With
// thousands of projects that is memory without bound. TenantOrchestrators
// replaces that map: at most max orchestrators, least recently used dropped
// first, each dropped after keepAliveMs unused; a dropped one is released
// (Cube closes its driver, which closes the tenant's database) and its
// cached answers and queue entries are deleted. Expired answers of every
// tenant are swept as well.
//
// A tenant's next request after a drop builds a new orchestrator, with an
// empty cache: answers are never carried from one to the next, and a
// tenant's entries are found by its own orchestrator id only.
//
// Each orchestrator's answers are kept by resultcache.js instead of Cube's
// memory cache driver: bounded in bytes overall and per tenant, answers too
// large for it not cached, and answers its queue keeps for callers who
// stopped waiting counted and dropped after a minute.

const { createRequire } = require('module');
const { ResultCache, MemoryLog } = require('./resultcache');

// The query orchestrator of server-core's own: its module-wide cache store
// and its classes are the ones Cube's orchestrators use.
const { LocalCacheDriver, LocalQueueDriver } = createRequire(require.resolve('@cubejs-backend/server-core'))(
  '@cubejs-backend/query-orchestrator',
);

// The per-tenant objects of a LocalQueueDriver. Their maps outlive the
// driver (they are module-wide, one per queue prefix), so they are emptied
// when the tenant is dropped.
const QUEUE_STATE = [
  'results', 'resultPromises', 'queryDef', 'toProcess', 'recent', 'active', 'heartBeat',
  'processingCounter', 'processingLocks',
];

class TenantOrchestrators {
  // results: the bounds of the cached answers (resultcache.js; defaults
  // from the heap's size); memoryLogMs: how often Cube's memory and the
  // cache's figures are logged (0: never).
  constructor({
    max = 1000, keepAliveMs = 20 * 60 * 1000, log = () => {}, results = {}, memoryLogMs = 30 * 1000,
  } = {}) {
    this.max = max;
    this.keepAliveMs = keepAliveMs;
    this.log = log;
    this.results = new ResultCache({ ...results, log });
    // Least recently used first: a Map keeps insertion order.
    this.storage = new Map();
    // Often enough that answers kept for callers who stopped waiting go
    // soon after their minute.
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.min(keepAliveMs / 4, 15000)));
    this.timer.unref();
    this.memoryLog = memoryLogMs > 0 ? new MemoryLog({
      intervalMs: memoryLogMs, log, figures: () => ({ ...this.results.stats(), orchestrators: this.storage.size }),
    }) : null;
    const { maxBytes, maxEntryBytes, tenantBytes } = this.results;
    log('Result cache bounds', { maxBytes, maxEntryBytes, tenantBytes });
  }

  get size() {
    return this.storage.size;
  }

  // The storage interface of Cube 0.33 (server-core's OrchestratorStorage).

  has(orchestratorId) {
    return this.storage.has(orchestratorId);
  }

  get(orchestratorId) {
    const entry = this.storage.get(orchestratorId);
    if (!entry) return undefined;
    this.storage.delete(orchestratorId);
    this.storage.set(orchestratorId, entry);
    entry.lastUsed = Date.now();
    return entry.api;
  }

  set(orchestratorId, api) {
    this.storage.delete(orchestratorId);
    this.keepAnswers(orchestratorId, api);
    this.storage.set(orchestratorId, { api, lastUsed: Date.now() });
    for (const [id, entry] of this.storage) {
      if (this.storage.size <= this.max) break;
      this.drop(id, entry, 'limit');
    }
    this.log('Tenant orchestrator added', { tenant: orchestratorId, tenants: this.storage.size });
    return this;
  }

  clear() {
    this.storage.clear();
  }

  async testConnections() {
    return Promise.all([...this.storage.values()].map(({ api }) => api.testConnection()));
  }

  async testOrchestratorConnections() {
    return Promise.all([...this.storage.values()].map(({ api }) => api.testOrchestratorConnections()));
  }

  async releaseConnections() {
    clearInterval(this.timer);
    if (this.memoryLog) this.memoryLog.stop();
    const entries = [...this.storage.entries()];
    await Promise.all(entries.map(([id, entry]) => this.drop(id, entry, 'shutdown')));
  }

  // Drops the tenants unused for keepAliveMs, and every tenant's expired
  // answers (Cube deletes one only when it is read after its expiry).
  sweep() {
    const before = Date.now() - this.keepAliveMs;
    for (const [id, entry] of [...this.storage]) {
      if (entry.lastUsed < before) this.drop(id, entry, 'idle');
    }
    const store = cacheStore();
    const now = Date.now();
    for (const key of Object.keys(store)) {
      if (store[key].exp < now) delete store[key];
    }
    this.results.sweep(now);
  }

  // Gives orchestratorId's query cache its bounded view of the result
  // cache as its cache driver, and has its queues count the answers they
  // keep.
  keepAnswers(orchestratorId, api) {
    const cache = api.getQueryOrchestrator().getQueryCache();
    if (!(cache.cacheDriver instanceof LocalCacheDriver)) return;
    const results = this.results.tenant(orchestratorId);
    cache.cacheDriver = results;
    // Cube makes a queue on its first query.
    const getQueue = cache.getQueue.bind(cache);
    cache.getQueue = async (dataSource) => {
      const queue = await getQueue(dataSource);
      results.watchQueue(queue);
      return queue;
    };
  }

  // Forgets orchestratorId's orchestrator, deletes what it left in the
  // process-wide cache and queue state, and releases it.
  async drop(orchestratorId, entry, reason) {
    if (this.storage.get(orchestratorId) !== entry) return;
    this.storage.delete(orchestratorId);
    this.log('Tenant orchestrator dropped', { tenant: orchestratorId, reason, tenants: this.storage.size });
    // Never rejects: callers do not wait for it.
    try {
      // At once, before a new orchestrator of the same id can add its own.
      this.results.drop(orchestratorId);
      forget(orchestratorId, entry.api);
      await entry.api.release();
    } catch (e) {
      this.log('Tenant orchestrator release failed', { tenant: orchestratorId, reason, error: e.message });
    }
  }
}

// The memory cache driver's store: one object for the whole process.
function cacheStore() {
  return new LocalCacheDriver().store;
}

// Deletes orchestratorId's answers from the cache store, and empties its
// queues' state. Cube writes a cache key as <kind>_<orchestrator id>_<hash>;
// the ids end in the project's digits, so no id is found inside another's
// keys.
function forget(orchestratorId, api) {
  const store = cacheStore();
  const marker = `_${orchestratorId}_`;
  for (const key of Object.keys(store)) {
    if (key.includes(marker)) delete store[key];
  }
  const cache = api.getQueryOrchestrator().getQueryCache();
  const queues = Object.values(cache.getQueues());
  if (cache.externalQueue) queues.push(cache.externalQueue);
  for (const queue of queues) {
    const driver = queue.queueDriver;
    if (!(driver instanceof LocalQueueDriver)) continue;
    for (const field of QUEUE_STATE) {
      const state = driver[field];
      if (state && typeof state === 'object') {
        for (const key of Object.keys(state)) delete state[key];
      }
    }
  }
}

module.exports = { TenantOrchestrators, cacheStore };
