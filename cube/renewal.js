'use strict';

// Views answered from Cube's cache, and renewed behind them.
//
// Cube 0.33 answers a view of a cached answer at once only while the cubes'
// refresh key is the one the answer was computed under. The first request
// after the key changed is still answered from the cache, but it renews the
// key, and every request after it waits for the store while its answer is
// computed again. A warm-up's answers thus served only until the key's next
// change (five minutes), while the warm-up comes every fifteen.
//
// Cube's own remedy, the query cache's backgroundRenew, stores a first
// answer without the key it was computed under, so that every new answer is
// computed twice. renewBehindViews changes one step instead: on a view (the
// path where Cube does not wait for the refresh keys), an answer whose key
// changed is returned from the cache and computed again in the background,
// in the project's own queue, as the renew cycle Cube starts beside each
// view already does. A request with renewQuery (the warm-up's), and the
// renew cycle itself, still wait for the renewal. How old an answer a view
// may get is bounded by the result cache's largest age (resultcache.js).
//
// This is QueryCache.renewQuery of Cube 0.33.65 with waitForRenew false for
// the answer; test/warmup's TestWarmedAnswersOutlastTheRefreshKey holds the
// behaviour on a real Cube.

const { createRequire } = require('module');

const { QueryCache, ContinueWaitError } = createRequire(require.resolve('@cubejs-backend/server-core'))(
  '@cubejs-backend/query-orchestrator',
);

const PATCHED = Symbol('renewal.patched');

function renewBehindViews() {
  const original = QueryCache.prototype.renewQuery;
  if (original[PATCHED]) return;
  function renewQuery(query, values, cacheKeyQueries, expireSecs, cacheKey, renewalThreshold, options) {
    // Cube's view path is the one call that skips waiting for the keys.
    if (!options || !options.skipRefreshKeyWaitForRenew) {
      return original.call(this, query, values, cacheKeyQueries, expireSecs, cacheKey, renewalThreshold, options);
    }
    return Promise.all(this.loadRefreshKeys(cacheKeyQueries, expireSecs, options))
      .catch((e) => {
        if (e instanceof ContinueWaitError) throw e;
        this.logger('Error fetching cache key queries', { error: e.stack || e, requestId: options.requestId });
        return [];
      })
      .then(async (cacheKeyQueryResults) => ({
        data: await this.cacheQueryResult(query, values, cacheKey, expireSecs, {
          renewalThreshold: renewalThreshold || 6 * 60 * 60,
          renewalKey: cacheKeyQueryResults && [
            cacheKeyQueries,
            cacheKeyQueryResults,
            this.queryRedisKey([query, values]),
          ],
          waitForRenew: false,
          external: options.external,
          requestId: options.requestId,
          dataSource: options.dataSource,
          useCsvQuery: options.useCsvQuery,
          lambdaTypes: options.lambdaTypes,
          persistent: options.persistent,
          primaryQuery: true,
        }),
        refreshKeyValues: cacheKeyQueryResults,
        lastRefreshTime: await this.lastRefreshTime(cacheKey),
      }));
  }
  renewQuery[PATCHED] = true;
  QueryCache.prototype.renewQuery = renewQuery;
}

module.exports = { renewBehindViews };
