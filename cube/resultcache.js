'use strict';

// Cube's cached answers, bounded in bytes.
//
// Cube 0.33's "memory" cache driver keeps every distinct answer in one
// process-wide object until it expires (24 hours unless a refresh key says
// otherwise), bounded by neither count nor size: sixteen distinct 6 MB
// exports filled a 192 MB heap and ended the process. Its queue also keeps
// an answer whose caller stopped waiting ("Continue wait") until someone
// asks for it again, which may be never.
//
// ResultCache holds both, in bytes estimated from the answer's shape (not
// by serialising it again):
//
// - an answer above maxEntryBytes is answered and not cached;
// - a tenant holds at most tenantBytes: past it, its own least recently
//   used answers go first;
// - all tenants together hold at most maxBytes: past it, the least
//   recently used answer of the tenant holding the most goes, so a tenant
//   filling the cache evicts its own answers before anyone else's;
// - an answer the queue holds for a caller who stopped waiting counts the
//   same way, and is dropped after waitingKeepMs (the caller's re-send then
//   runs the query again).
//
// TenantResults is one tenant's view: it is that tenant's cache driver
// (Cube's CacheDriverInterface), so a tenant's answers are found by its own
// orchestrator only, and drop() deletes them all.

const v8 = require('v8');
const { createRequire } = require('module');

const { LocalCacheDriver, LocalQueueDriver } = createRequire(require.resolve('@cubejs-backend/server-core'))(
  '@cubejs-backend/query-orchestrator',
);

const MB = 1024 * 1024;

// Defaults from the heap Node was given (--max-old-space-size): a fifth of
// it for answers kept after they were sent (48 MB of Cube's 240 MB at
// --max-old-space-size=192), the rest for the model, the answers being
// built and the garbage collector's headroom. The other bounds follow the
// whole one unless set.
function defaults(heapLimit = v8.getHeapStatistics().heap_size_limit, maxBytes = 0) {
  const whole = maxBytes || Math.max(4 * MB, Math.floor(heapLimit / 5 / MB) * MB);
  return {
    maxBytes: whole,
    // A dashboard panel's answer is kilobytes; an export of tens of
    // thousands of rows is megabytes and is rarely asked twice.
    maxEntryBytes: Math.max(64 * 1024, Math.floor(whole / 16)),
    tenantBytes: Math.floor(whole / 4),
    waitingKeepMs: 60 * 1000,
    maxAgeMs: 3600 * 1000,
  };
}

// What V8 spends on a value, estimated from its shape in a time that does
// not grow with the answer: rows are sampled. Strings count their header
// and one byte a character (two for non-Latin-1 ones, when seen), objects a
// header and a slot per property, arrays a slot per element.
const SAMPLE_ROWS = 32;
const STRING_HEADER = 16;
const OBJECT_HEADER = 24;
const SLOT = 8;
// An object without a prototype (Cube's row shape when its columns' names
// cannot be an object literal's) keeps its properties in a hash table.
const DICTIONARY_SLOT = 72;

function estimateBytes(value, depth = 0) {
  switch (typeof value) {
    case 'string':
      return STRING_HEADER + stringBytes(value);
    case 'number':
      return Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : 16;
    case 'bigint':
      return 24;
    case 'object':
      break;
    default:
      return 0;
  }
  if (value === null) return 0;
  if (depth > 4) return OBJECT_HEADER;
  if (Buffer.isBuffer(value)) return OBJECT_HEADER * 3 + value.length;
  if (value instanceof Date) return OBJECT_HEADER + 8;
  if (Array.isArray(value)) {
    const n = value.length;
    let bytes = OBJECT_HEADER + 16 + n * SLOT;
    if (n === 0) return bytes;
    if (n <= SAMPLE_ROWS) {
      for (const item of value) bytes += estimateBytes(item, depth + 1);
      return bytes;
    }
    // Evenly spaced rows, first and last included: an answer's rows share
    // their columns.
    let sampled = 0;
    for (let i = 0; i < SAMPLE_ROWS; i++) {
      sampled += estimateBytes(value[Math.floor((i * (n - 1)) / (SAMPLE_ROWS - 1))], depth + 1);
    }
    return bytes + Math.ceil((sampled / SAMPLE_ROWS) * n);
  }
  const slot = Object.getPrototypeOf(value) === null ? DICTIONARY_SLOT : SLOT;
  let bytes = OBJECT_HEADER;
  let keys = 0;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    keys++;
    bytes += slot + estimateBytes(value[key], depth + 1);
    if (keys > 256) {
      // A wide object: the rest is assumed alike.
      const all = Object.keys(value).length;
      return Math.ceil((bytes * all) / keys);
    }
  }
  return bytes;
}

// Latin-1 strings take a byte a character, others two; a long string is
// judged by its first characters.
function stringBytes(s) {
  const n = s.length;
  const probe = Math.min(n, 64);
  for (let i = 0; i < probe; i++) {
    if (s.charCodeAt(i) > 0xff) return 2 * n;
  }
  return n;
}

// The answers one tenant keeps, least recently used first (a Map keeps
// insertion order; a use moves an entry to the end). It is the tenant's
// cache driver.
class TenantResults {
  constructor(cache, tenant) {
    this.cache = cache;
    this.tenant = tenant;
    this.entries = new Map();
    this.bytes = 0;
    // Locks hold no answers: Cube's own driver keeps them, in its
    // process-wide store, whose keys name the tenant.
    this.locks = new LocalCacheDriver();
    this.withLock = (key, cb, expiration, freeAfter) => this.locks.withLock(key, cb, expiration, freeAfter);
  }

  async get(key) {
    const entry = this.entries.get(key);
    if (!entry || entry.kind !== ANSWER) return undefined;
    if (entry.exp < Date.now()) {
      this.delete(key, entry);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  // Cube writes { time, result, renewalKey } and logs the bytes returned.
  async set(key, value, expiration) {
    const bytes = estimateBytes(value) + STRING_HEADER + key.length;
    const old = this.entries.get(key);
    if (old) this.delete(key, old);
    if (this.cache.dropped.has(this)) return { key, bytes };
    if (bytes > this.cache.maxEntryBytes) {
      this.cache.refused++;
      this.cache.log('Answer not cached: larger than the largest cached answer', {
        tenant: this.tenant, bytes, maxEntryBytes: this.cache.maxEntryBytes,
      });
      return { key, bytes };
    }
    this.cache.admit(this, key, {
      kind: ANSWER, value, bytes, exp: Date.now() + Math.min(expiration * 1000, this.cache.maxAgeMs),
    });
    return { key, bytes };
  }

  async remove(key) {
    const entry = this.entries.get(key);
    if (entry) this.delete(key, entry);
  }

  async keysStartingWith(prefix) {
    const now = Date.now();
    const keys = [];
    for (const [key, entry] of this.entries) {
      if (entry.kind === ANSWER && key.startsWith(prefix) && entry.exp > now) keys.push(key);
    }
    return keys;
  }

  async cleanup() {}

  async testConnection() {}

  // Counts an answer the queue keeps for a caller who stopped waiting
  // (results[key] is the promise holding it), so that it takes its share of
  // the bytes and is dropped after waitingKeepMs.
  waiting(results, key, promise, value) {
    if (this.cache.dropped.has(this)) return;
    this.cache.admit(this, WAITING + key, {
      kind: WAITING, results, key, promise, bytes: estimateBytes(value), exp: Date.now() + this.cache.waitingKeepMs,
    });
  }

  // The queue handed the answer it kept to its caller and let it go.
  taken(key) {
    const entry = this.entries.get(WAITING + key);
    if (entry) this.delete(WAITING + key, entry);
  }

  // Counts the answers that queue keeps for callers who stopped waiting.
  // Cube's memory queue resolves a promise per finished query and deletes
  // it when a waiter takes the result; a result nobody was waiting for
  // stays, with the answer.
  watchQueue(queue) {
    const driver = queue && queue.queueDriver;
    if (!(driver instanceof LocalQueueDriver) || driver[WATCHED]) return;
    driver[WATCHED] = true;
    const connect = driver.createConnection.bind(driver);
    driver.createConnection = () => {
      const conn = connect();
      const setResult = conn.setResultAndRemoveQuery.bind(conn);
      conn.setResultAndRemoveQuery = async (queryKey, executionResult, ...rest) => {
        const set = await setResult(queryKey, executionResult, ...rest);
        if (set && executionResult && executionResult.result !== undefined) {
          const key = conn.resultListKey(queryKey);
          const promise = conn.resultPromises[key];
          // Waiters take the result in the microtasks that follow; what is
          // left afterwards waits for a re-send.
          setImmediate(() => {
            if (promise && conn.resultPromises[key] === promise) {
              this.waiting(conn.resultPromises, key, promise, executionResult.result);
            }
          });
        }
        return set;
      };
      const getResultBlocking = conn.getResultBlocking.bind(conn);
      conn.getResultBlocking = async (queryKeyHash, ...rest) => {
        const res = await getResultBlocking(queryKeyHash, ...rest);
        if (res) this.taken(conn.resultListKey(queryKeyHash));
        return res;
      };
      return conn;
    };
  }

  delete(key, entry) {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    this.cache.bytes -= entry.bytes;
    if (entry.kind === WAITING && entry.results[entry.key] === entry.promise) {
      delete entry.results[entry.key];
    }
  }

  // Drops the least recently used entry other than keep; false if none.
  evictOne(keep) {
    for (const [key, entry] of this.entries) {
      if (key === keep) continue;
      this.delete(key, entry);
      this.cache.evicted++;
      return true;
    }
    return false;
  }
}

const ANSWER = 'answer';
const WAITING = 'waiting:';
const WATCHED = Symbol('resultcache.watched');

// The process-wide bound over every tenant's TenantResults.
class ResultCache {
  constructor(options = {}) {
    const d = defaults(undefined, options.maxBytes);
    this.maxBytes = d.maxBytes;
    this.maxEntryBytes = Math.min(options.maxEntryBytes || d.maxEntryBytes, this.maxBytes);
    this.tenantBytes = Math.min(options.tenantBytes || d.tenantBytes, this.maxBytes);
    this.waitingKeepMs = options.waitingKeepMs || d.waitingKeepMs;
    // Cube keeps an answer 24 hours; with answers renewed behind the view,
    // this bounds how old an answer a view may get.
    this.maxAgeMs = options.maxAgeMs || d.maxAgeMs;
    this.log = options.log || (() => {});
    this.tenants = new Map();
    // Views of dropped tenants: an answer finishing after its tenant was
    // dropped is not kept.
    this.dropped = new WeakSet();
    this.bytes = 0;
    this.evicted = 0;
    this.refused = 0;
  }

  // tenant's view, made on first use.
  tenant(tenant) {
    let view = this.tenants.get(tenant);
    if (!view) {
      view = new TenantResults(this, tenant);
      this.tenants.set(tenant, view);
    }
    return view;
  }

  // Deletes everything tenant holds.
  drop(tenant) {
    const view = this.tenants.get(tenant);
    if (!view) return;
    this.tenants.delete(tenant);
    this.dropped.add(view);
    for (const [key, entry] of [...view.entries]) view.delete(key, entry);
  }

  // Adds entry under key to view, then evicts until the bounds hold: the
  // tenant's own answers past its share, then the largest holder's.
  admit(view, key, entry) {
    const old = view.entries.get(key);
    if (old) view.delete(key, old);
    view.entries.set(key, entry);
    view.bytes += entry.bytes;
    this.bytes += entry.bytes;
    while (view.bytes > this.tenantBytes && view.evictOne(key));
    while (this.bytes > this.maxBytes) {
      let largest = null;
      for (const t of this.tenants.values()) {
        if (t.entries.size > (t === view ? 1 : 0) && (!largest || t.bytes > largest.bytes)) largest = t;
      }
      if (!largest || !largest.evictOne(key)) break;
    }
  }

  // Deletes expired answers and answers kept past waitingKeepMs.
  sweep(now = Date.now()) {
    for (const view of this.tenants.values()) {
      for (const [key, entry] of [...view.entries]) {
        if (entry.exp < now) view.delete(key, entry);
      }
    }
  }

  stats() {
    let answers = 0;
    let waiting = 0;
    for (const view of this.tenants.values()) {
      for (const entry of view.entries.values()) {
        if (entry.kind === ANSWER) answers++;
        else waiting++;
      }
    }
    return {
      bytes: this.bytes, answers, waiting, tenants: this.tenants.size, evicted: this.evicted, refused: this.refused,
    };
  }
}

// Logs Cube's memory every intervalMs: the V8 heap in use now and at its
// highest since the previous line (sampled every sampleMs, so that a peak
// between lines shows), the heap's limit, the resident memory, and
// figures() (the result cache's). The soak reads these lines.
class MemoryLog {
  constructor({
    intervalMs, sampleMs = 1000, log, figures = () => ({}),
  }) {
    this.log = log;
    this.figures = figures;
    this.peak = 0;
    this.sampler = setInterval(() => this.sample(), Math.min(sampleMs, intervalMs));
    this.sampler.unref();
    this.timer = setInterval(() => this.write(), intervalMs);
    this.timer.unref();
  }

  sample() {
    const { used_heap_size: used } = v8.getHeapStatistics();
    if (used > this.peak) this.peak = used;
    return used;
  }

  write() {
    const used = this.sample();
    const { heap_size_limit: limit } = v8.getHeapStatistics();
    const mb = (n) => Math.round((n / MB) * 10) / 10;
    const { bytes, ...rest } = this.figures();
    this.log('Cube memory', {
      heapUsedMB: mb(used),
      heapPeakMB: mb(this.peak),
      heapLimitMB: mb(limit),
      rssMB: mb(process.memoryUsage.rss()),
      resultCacheMB: mb(bytes || 0),
      ...rest,
    });
    this.peak = used;
  }

  stop() {
    clearInterval(this.sampler);
    clearInterval(this.timer);
  }
}

module.exports = {
  ResultCache, TenantResults, MemoryLog, estimateBytes, defaults,
};
