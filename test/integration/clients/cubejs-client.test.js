'use strict';

// Cube's own JavaScript client against the product analytics API, in the two
// ways it meets the API: as GitLab's dashboards configure it (a POST
// transport, the caller's token as a Bearer header) and with its defaults,
// as anyone who already uses Cube writes it (GET with ?query=, the token
// bare in Authorization). Every answer is compared with the same client's
// answer straight from Cube. Run by test/integration (TestCubeClients),
// which starts the stack and passes:
//   API_URL      the API's base address
//   CALLER_TOKEN a caller token for project 1
//   CUBE_URL     Cube's base address
//   CUBE_TOKEN   a Cube token for project 1

const test = require('node:test');
const assert = require('node:assert/strict');
const cubejsModule = require('@cubejs-client/core');

const cubejs = cubejsModule.default || cubejsModule;
const { HttpTransport } = cubejsModule;
const { API_URL, CALLER_TOKEN, CUBE_URL, CUBE_TOKEN } = process.env;

const requestPath = (project) => `${API_URL}/api/v4/projects/${project}/product_analytics/request`;

// As GitLab's frontend (cube_analytics.js) builds it.
const gitlabClient = (project) => cubejs('1', {
  transport: new HttpTransport({
    apiUrl: requestPath(project),
    method: 'POST',
    authorization: `Bearer ${CALLER_TOKEN}`,
    headers: { 'X-Requested-With': 'XMLHttpRequest' },
  }),
});

// As Cube's documentation shows it: defaults only.
const defaultClient = (project) => cubejs(CALLER_TOKEN, { apiUrl: `${API_URL}/projects/${project}/product_analytics/request` });

const cube = cubejs(CUBE_TOKEN, { apiUrl: `${CUBE_URL}/cubejs-api/v1` });

const clients = { 'as GitLab configures it': gitlabClient, 'with its defaults': defaultClient };

const lastWeek = () => {
  const to = new Date();
  const from = new Date(to.getTime() - 7 * 24 * 3600 * 1000);
  return [from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)];
};

const queries = {
  'events by day': {
    measures: ['TrackedEvents.count'],
    timeDimensions: [{ dimension: 'TrackedEvents.derivedTstamp', granularity: 'day', dateRange: lastWeek() }],
    timezone: 'UTC',
  },
  'sessions per browser': {
    measures: ['Sessions.count'],
    dimensions: ['Sessions.agentName'],
    order: { 'Sessions.count': 'desc', 'Sessions.agentName': 'asc' },
    limit: 100,
  },
  // Past 2,000 characters of URL, the default client sends a POST instead.
  'a long filter': {
    measures: ['TrackedEvents.pageViewsCount'],
    dimensions: ['TrackedEvents.pageUrlpath'],
    filters: [{ member: 'TrackedEvents.pageUrlpath', operator: 'notEquals', values: Array.from({ length: 150 }, (_, i) => `/nowhere/${i}`) }],
    order: [['TrackedEvents.pageViewsCount', 'desc'], ['TrackedEvents.pageUrlpath', 'asc']],
    limit: 20,
  },
};

for (const [how, client] of Object.entries(clients)) {
  test(`load ${how}: the same figures as Cube's own, through every ResultSet view`, async () => {
    for (const [name, query] of Object.entries(queries)) {
      const [got, want] = await Promise.all([
        client(1).load(query, { castNumerics: true }),
        cube.load(query, { castNumerics: true }),
      ]);
      assert.ok(want.rawData().length > 0, `${name}: Cube has rows`);
      assert.deepEqual(got.rawData(), want.rawData(), `${name}: rawData`);
      assert.deepEqual(got.chartPivot(), want.chartPivot(), `${name}: chartPivot`);
      assert.deepEqual(got.seriesNames(), want.seriesNames(), `${name}: seriesNames`);
      assert.deepEqual(got.tablePivot(), want.tablePivot(), `${name}: tablePivot`);
      assert.deepEqual(got.tableColumns(), want.tableColumns(), `${name}: tableColumns`);
      assert.equal(typeof got.rawData()[0][query.measures[0]], 'number', `${name}: castNumerics`);
    }
  });

  test(`a blended query ${how}: one result per query`, async () => {
    const blend = [
      { measures: ['Sessions.count'], timeDimensions: [{ dimension: 'Sessions.startAt', granularity: 'day', dateRange: lastWeek() }] },
      { measures: ['TrackedEvents.count'], timeDimensions: [{ dimension: 'TrackedEvents.derivedTstamp', granularity: 'day', dateRange: lastWeek() }] },
    ];
    const [got, want] = await Promise.all([client(1).load(blend), cube.load(blend)]);
    assert.equal(got.decompose().length, 2);
    assert.deepEqual(got.chartPivot(), want.chartPivot());
    assert.deepEqual(got.decompose().map((r) => r.rawData()), want.decompose().map((r) => r.rawData()));
  });

  test(`meta ${how}`, async () => {
    const [got, want] = await Promise.all([client(1).meta(), cube.meta()]);
    assert.deepEqual(got.cubes.map((c) => c.name).sort(), want.cubes.map((c) => c.name).sort());
    assert.deepEqual(got.cubes, want.cubes);
  });

  test(`dry-run ${how}`, async () => {
    const query = queries['sessions per browser'];
    const [got, want] = await Promise.all([client(1).dryRun(query), cube.dryRun(query)]);
    assert.deepEqual(got.normalizedQueries, want.normalizedQueries);
    assert.equal(got.queryType, want.queryType);
  });

  test(`a project the token may not read ${how}: GitLab's 404, in both clients' words`, async () => {
    await assert.rejects(client(2).load(queries['events by day']), (err) => {
      assert.equal(err.message, '404 Project Not Found'); // Cube's client reads "error"
      assert.equal(err.response.message, '404 Project Not Found'); // GitLab's frontend reads "message"
      assert.equal(err.status, 404);
      return true;
    });
  });

  test(`an unknown member ${how}: Cube's refusal, without its stack`, async () => {
    await assert.rejects(client(1).load({ measures: ['TrackedEvents.nope'] }), (err) => {
      assert.equal(err.message, "'nope' not found for path 'TrackedEvents.nope'");
      assert.equal(err.status, 400);
      assert.equal(err.response.stack, undefined);
      return true;
    });
  });
}
