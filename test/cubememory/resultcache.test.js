'use strict';

// The result cache's bounds (cube/resultcache.js) on Cube's own classes:
// its query queue over the memory queue driver, as each tenant's
// orchestrator uses them; and the memory a tenant's database may use
// (cube/tenantdb.js). Run by cubememory_test.go (node --test).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { createRequire } = require('module');

const cubeDir = path.join(__dirname, '..', '..', 'cube');
const { ResultCache, estimateBytes, defaults } = require(path.join(cubeDir, 'resultcache.js'));
const { QueryCache, ContinueWaitError } = createRequire(require.resolve('@cubejs-backend/server-core', { paths: [cubeDir] }))(
  '@cubejs-backend/query-orchestrator',
);

const KB = 1024;
const MB = 1024 * KB;

// rows answer rows of cols string columns of about len characters, made
// as Cube's DuckDB driver makes them: each row a copy of one shape, each
// value a flat string.
function answer(rows, cols, len, seed = 0) {
  const shape = {};
  for (let c = 0; c < cols; c++) shape[`tracked_events__column_${c}`] = null;
  const out = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = { ...shape };
    for (let c = 0; c < cols; c++) {
      row[`tracked_events__column_${c}`] = Buffer.from(`${seed}:${i}:${c}:`.padEnd(len, 'x')).toString('latin1');
    }
    out[i] = row;
  }
  return out;
}

// An entry as Cube's query cache writes it.
const entry = (result) => ({ time: Date.now(), result, renewalKey: 'key' });

// An answer of about bytes.
function answerOf(bytes, seed) {
  const one = estimateBytes(answer(100, 4, 40, seed)) / 100;
  return answer(Math.max(1, Math.round(bytes / one)), 4, 40, seed);
}

test('estimates within a third of what the heap holds', { skip: !global.gc && 'needs --expose-gc' }, () => {
  // Every answer stays referenced, so that each difference is one answer's.
  const kept = [];
  global.gc();
  let before = process.memoryUsage().heapUsed;
  for (const [rows, cols, len] of [[20000, 12, 30], [5000, 25, 60], [50000, 3, 10]]) {
    kept.push(answer(rows, cols, len));
    global.gc();
    const after = process.memoryUsage().heapUsed;
    const estimate = estimateBytes(kept[kept.length - 1]);
    const ratio = (after - before) / estimate;
    assert.ok(ratio > 0.75 && ratio < 1.33, `${rows}×${cols}: heap ${after - before}, estimate ${estimate}`);
    before = after;
  }
});

test('defaults follow the heap: a fifth for answers, a sixteenth of that per answer, a quarter per tenant; or the whole bound when set', () => {
  const d = defaults(240 * MB);
  assert.equal(d.maxBytes, 48 * MB);
  assert.equal(d.maxEntryBytes, 3 * MB);
  assert.equal(d.tenantBytes, 12 * MB);
  const set = new ResultCache({ maxBytes: 16 * MB });
  assert.deepEqual([set.maxBytes, set.maxEntryBytes, set.tenantBytes], [16 * MB, 1 * MB, 4 * MB]);
});

test('an answer above the largest cached one is answered and not kept', async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB });
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  const { bytes } = await a.set('SQL_QUERY_RESULT_CUBE_APP_gitlab_project_1_big', entry(answerOf(2 * MB)), 60);
  assert.ok(bytes > 1 * MB, `${bytes}`);
  assert.equal(await a.get('SQL_QUERY_RESULT_CUBE_APP_gitlab_project_1_big'), undefined);
  assert.equal(cache.bytes, 0);
  assert.equal(cache.refused, 1);
  await a.set('small', entry(answerOf(100 * KB)), 60);
  assert.ok(await a.get('small'));
});

test("a tenant past its share loses its own least recently used answers, and no one else's", async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB, tenantBytes: 2 * MB });
  const other = cache.tenant('CUBE_APP_gitlab_project_2');
  await other.set('dashboard', entry(answerOf(50 * KB)), 60);
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  await a.set('first', entry(answerOf(400 * KB, 1)), 60);
  for (let i = 0; i < 20; i++) {
    await a.set(`export_${i}`, entry(answerOf(400 * KB, i)), 60);
    await a.get('first'); // used each time: kept
  }
  assert.ok(a.bytes <= 2 * MB, `${a.bytes}`);
  assert.ok(await a.get('first'), 'the answer used all along was evicted');
  assert.ok(await a.get('export_19'), 'the newest answer was evicted');
  assert.equal(await a.get('export_0'), undefined, 'the oldest unused answer was kept past the share');
  assert.ok(await other.get('dashboard'), "another tenant's answer was evicted");
  assert.ok(cache.evicted > 0);
});

test('past the whole bound, the largest holder loses its answers first', async () => {
  const cache = new ResultCache({ maxBytes: 4 * MB, maxEntryBytes: 1 * MB, tenantBytes: 2 * MB });
  const small = cache.tenant('CUBE_APP_gitlab_project_2');
  await small.set('dashboard', entry(answerOf(100 * KB)), 60);
  for (let round = 0; round < 10; round++) {
    for (const p of [1, 3, 4, 5]) {
      await cache.tenant(`CUBE_APP_gitlab_project_${p}`).set(`export_${round}`, entry(answerOf(600 * KB, round)), 60);
      assert.ok(cache.bytes <= 4 * MB, `${cache.bytes} after project ${p}, round ${round}`);
    }
  }
  assert.ok(await small.get('dashboard'), "the smallest holder's answer was evicted");
  for (const p of [1, 3, 4, 5]) {
    assert.ok(await cache.tenant(`CUBE_APP_gitlab_project_${p}`).get('export_9'), `project ${p}'s newest answer was evicted`);
  }
});

test("a dropped tenant's answers go with it, and an answer finishing after the drop is not kept", async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB });
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  await a.set('one', entry(answerOf(200 * KB)), 60);
  cache.drop('CUBE_APP_gitlab_project_1');
  assert.equal(cache.bytes, 0);
  assert.equal(await a.get('one'), undefined);
  await a.set('late', entry(answerOf(200 * KB)), 60);
  assert.equal(cache.bytes, 0);
  assert.equal(await a.get('late'), undefined);
  const again = cache.tenant('CUBE_APP_gitlab_project_1');
  assert.notEqual(again, a);
  assert.equal(await again.get('one'), undefined);
});

test('expired answers are swept', async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB });
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  await a.set('short', entry(answerOf(100 * KB)), 1);
  await a.set('long', entry(answerOf(100 * KB)), 3600);
  const bytes = cache.bytes;
  cache.sweep(Date.now() + 2000);
  assert.ok(cache.bytes < bytes && cache.bytes > 0);
  assert.equal(await a.get('short'), undefined);
  assert.ok(await a.get('long'));
});

test('an answer is kept no longer than the largest age, whatever Cube asks', async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB, maxAgeMs: 60 * 1000 });
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  await a.set('day', entry(answerOf(10 * KB)), 24 * 3600);
  await a.set('second', entry(answerOf(10 * KB)), 1);
  cache.sweep(Date.now() + 2000);
  assert.ok(await a.get('day'), 'an answer younger than the largest age was dropped');
  assert.equal(await a.get('second'), undefined, "an answer past Cube's own expiry was kept");
  cache.sweep(Date.now() + 61 * 1000);
  assert.equal(await a.get('day'), undefined, 'an answer older than the largest age was kept');
  assert.equal(new ResultCache({ maxBytes: 8 * MB }).maxAgeMs, defaults(240 * MB).maxAgeMs);
  assert.equal(defaults(240 * MB).maxAgeMs, 3600 * 1000);
});

test("a large project's database gets a sixth of its file, between the limit and the maximum", () => {
  const { memoryFor, DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_MAX } = require(path.join(cubeDir, 'tenantdb.js'));
  assert.equal(DEFAULT_MEMORY_LIMIT, '256MB');
  assert.equal(DEFAULT_MEMORY_MAX, '2GB');
  for (const [bytes, limit, max, want] of [
    [0, '256MB', '2GB', '256MB'], // no file
    [756e6, '256MB', '2GB', '256MB'], // 10 million events
    [1536e6, '256MB', '2GB', '256MB'], // a sixth is the limit
    [2e9, '256MB', '2GB', '334MB'],
    [7.93e9, '256MB', '2GB', '1322MB'], // 100 million events
    [20e9, '256MB', '2GB', '2000MB'], // capped
    [7.93e9, '256MB', '1GB', '1000MB'],
    [7.93e9, '2GiB', '4GB', '2GiB'], // never below the limit
  ]) {
    assert.equal(memoryFor(bytes, limit, max), want, `${bytes} bytes within ${limit}..${max}`);
  }
  assert.throws(() => memoryFor(1e9, 'lots', '2GB'), /not a size/);
});

test('large databases together take no more than the extra beyond the limit', () => {
  const { grantMemory } = require(path.join(cubeDir, 'tenantdb.js'));
  for (const [want, used, granted] of [
    ['256MB', 0, '256MB'], // a small project's
    ['256MB', 3e9, '256MB'], // whatever large ones take
    ['1322MB', 0, '1322MB'], // the first large one
    ['1322MB', 1066e6, '1190MB'], // what is left of the extra
    ['1322MB', 2e9, '256MB'], // none left: the limit
    ['1322MB', 2.5e9, '256MB'],
  ]) {
    assert.equal(grantMemory(want, '256MB', '2GB', used), granted, `${want} with ${used} bytes beyond the limit taken`);
  }
});

// A query queue as QueryCache makes it for a tenant, whose query takes
// queryMs and answers rows.
function queue(prefix, queryMs, rows) {
  return QueryCache.createQueue(prefix, async () => ({}), async () => {
    await new Promise((resolve) => setTimeout(resolve, queryMs));
    return rows;
  }, { logger: () => {}, cacheAndQueueDriver: 'memory', continueWaitTimeout: 1, concurrency: 2 });
}

function waitFor(what, cond, ms = 10000) {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (cond()) resolve();
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 10);
    };
    check();
  });
}

test("the queue's answer for a caller who stopped waiting counts, is handed over on the re-send, or dropped", async () => {
  const cache = new ResultCache({ maxBytes: 8 * MB, maxEntryBytes: 1 * MB, waitingKeepMs: 60000 });
  const a = cache.tenant('CUBE_APP_gitlab_project_1');
  const rows = answerOf(2 * MB);
  const q = queue('SQL_QUERY_CUBE_APP_gitlab_project_1_default', 1500, rows);
  a.watchQueue(q);

  // Answered in time: handed to its waiter, nothing kept.
  const quick = queue('SQL_QUERY_CUBE_APP_gitlab_project_1_quick', 10, rows);
  a.watchQueue(quick);
  assert.equal(await quick.executeInQueue('query', ['quick', []], { query: 'quick' }, 0, {}), rows);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(cache.bytes, 0);

  // Slower than the caller's wait: kept, counted although larger than a
  // cached answer may be, and handed over on the re-send.
  await assert.rejects(q.executeInQueue('query', ['slow', []], { query: 'slow' }, 0, {}), ContinueWaitError);
  await waitFor('the answer kept for a re-send', () => cache.stats().waiting === 1);
  assert.ok(cache.bytes > 1 * MB, `${cache.bytes}`);
  assert.equal(await q.executeInQueue('query', ['slow', []], { query: 'slow' }, 0, {}), rows);
  assert.equal(cache.bytes, 0);
  assert.equal(cache.stats().waiting, 0);

  // Never asked again: dropped after waitingKeepMs.
  await assert.rejects(q.executeInQueue('query', ['gone', []], { query: 'gone' }, 0, {}), ContinueWaitError);
  await waitFor('the answer kept for a re-send', () => cache.stats().waiting === 1);
  const results = q.queueDriver.resultPromises;
  assert.equal(Object.keys(results).length, 1);
  cache.sweep(Date.now() + 61000);
  assert.equal(cache.bytes, 0);
  assert.equal(Object.keys(results).length, 0, 'the queue still holds the answer');
});
