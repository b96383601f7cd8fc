// GitLab's Audience and Behavior dashboards, drawn from the product
// analytics API with GitLab's client library (@cubejs-client/core, set up as
// GitLab's frontend sets it up) and its charting library (ECharts).
//
// dashboards.json holds the panels and their queries (from shared/dashboards)
// with the date range left open; the page fills in the range picked. The
// API and a caller token come from the local stack's local.json or, on a
// static host, from the connection form (kept in sessionStorage).
//
// A project's funnels (GitLab's .gitlab/analytics/funnels definitions) are
// cubes of its meta beside GitLab's own; each is drawn as a bar chart of its
// steps, as GitLab's frontend does.
(() => {
  'use strict';

  const { CubeApi, HttpTransport } = window.cubejs;
  const STORAGE_KEY = 'productAnalytics.connection';
  const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
  const percentFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  const $ = (id) => document.getElementById(id);
  // GitLab's own cubes; any other cube of a project's meta shaped as a
  // funnel (count, step, date) is one of its funnels.
  const GITLAB_CUBES = new Set(['TrackedEvents', 'Sessions', 'ReturningUsers']);

  let config; // dashboards.json
  let local = null; // local.json, on the local stack only
  let drawing = 0; // the current drawing; answers of an older one are dropped
  let charts = []; // ECharts instances of the current drawing
  // Tells the client that a panel's load was replaced by a newer drawing's,
  // so that it stops asking again for the old one while Cube works on it.
  const mutex = {};

  // ---- connection ---------------------------------------------------------

  function savedConnection() {
    try {
      const c = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
      return c && Array.isArray(c.projects) && c.projects.length ? c : null;
    } catch (_) {
      return null;
    }
  }

  async function fetchJSON(path) {
    const response = await fetch(path, { cache: 'no-store' });
    if (!response.ok) {
      const error = new Error(`${path}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // fetchLocal asks the local stack for its projects and a fresh token;
  // null where the page is hosted without one.
  async function fetchLocal() {
    try {
      return await fetchJSON('local.json');
    } catch (error) {
      if (error.status) return null; // no local stack here
      throw error;
    }
  }

  // connection is where the dashboards are drawn from: the form's entries,
  // else the local stack's.
  function connection() {
    const saved = savedConnection();
    if (saved) return { ...saved, source: 'entered' };
    if (local && local.token && local.projects.length) {
      return { apiUrl: '', token: local.token, projects: local.projects, source: 'local' };
    }
    return null;
  }

  function showConnection() {
    const c = connection();
    const form = $('connection-form');
    const summary = $('connection-summary');
    if (!c) {
      summary.textContent = local
        ? 'this API does not take the local stack\'s tokens: enter one'
        : 'enter the API and a caller token';
      $('connection').open = true;
      return;
    }
    summary.textContent = c.source === 'local'
      ? `the local stack, projects ${c.projects.join(', ')}`
      : `${c.apiUrl || 'this site'}, projects ${c.projects.join(', ')}`;
    form.apiUrl.value = c.source === 'local' ? '' : c.apiUrl;
    form.projects.value = c.projects.join(', ');
    form.token.value = '';
    form.token.placeholder = c.source === 'local' ? 'the local stack provides one' : 'kept; enter to replace';
    form.token.required = c.source !== 'entered';
  }

  function onConnect(event) {
    event.preventDefault();
    const form = event.target;
    const previous = savedConnection();
    let apiUrl = form.apiUrl.value.trim().replace(/\/+$/, '');
    if (apiUrl) {
      try {
        apiUrl = new URL(apiUrl).origin + new URL(apiUrl).pathname.replace(/\/+$/, '');
      } catch (_) {
        form.apiUrl.setCustomValidity('not a URL');
        form.reportValidity();
        return;
      }
    }
    const token = form.token.value.trim().replace(/^Bearer\s+/i, '') || (previous && previous.token);
    const projects = [...new Set(form.projects.value.split(',').map((p) => Number(p.trim())))]
      .filter((p) => Number.isSafeInteger(p) && p > 0);
    if (!token || !projects.length) return;
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ apiUrl, token, projects }));
    $('connection').open = false;
    start();
  }

  function onForget() {
    sessionStorage.removeItem(STORAGE_KEY);
    start();
  }

  // ---- view state in the address: #project=1&days=30 ---------------------

  function viewFromHash(c) {
    const params = new URLSearchParams(location.hash.slice(1));
    const project = Number(params.get('project'));
    const days = Number(params.get('days'));
    return {
      project: Number.isSafeInteger(project) && project > 0 ? project : c.projects[0],
      days: config.ranges.includes(days) ? days : config.ranges[0],
    };
  }

  function setHash(view) {
    const hash = `#project=${view.project}&days=${view.days}`;
    if (location.hash !== hash) location.hash = hash; // hashchange draws
  }

  function showControls(c, view) {
    const project = $('project');
    const ids = c.projects.includes(view.project) ? c.projects : [...c.projects, view.project];
    project.replaceChildren(...ids.map((id) => new Option(`Project ${id}`, id, false, id === view.project)));
    const range = $('range');
    range.replaceChildren(...config.ranges.map((d) => new Option(`Last ${d} days`, d, false, d === view.days)));
  }

  // ---- queries ------------------------------------------------------------

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  // dated fills in a panel's date range as shared/dashboards.QueriesOver
  // does: from days ago to today, in UTC.
  function dated(query, days, now) {
    const from = new Date(now);
    from.setUTCDate(from.getUTCDate() - days);
    const values = { [config.from]: isoDay(from), [config.to]: isoDay(now) };
    return JSON.parse(JSON.stringify(query), (_, v) => (typeof v === 'string' && v in values ? values[v] : v));
  }

  // cubeApi builds the client as GitLab's frontend does (a POST transport to
  // the project's product_analytics/request), with the caller token in the
  // transport: a custom transport never sees CubeApi's first argument.
  function cubeApi(c, project) {
    return new CubeApi(c.token, {
      transport: new HttpTransport({
        apiUrl: `${c.apiUrl}/api/v4/projects/${project}/product_analytics/request`,
        method: 'POST',
        headers: {},
        authorization: `Bearer ${c.token}`,
      }),
    });
  }

  // ---- drawing ------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    e.append(...children);
    return e;
  }

  function formatNumber(v) {
    return v === null || v === undefined || Number.isNaN(v) ? '–' : numberFormat.format(v);
  }

  function setState(panel, state, ...content) {
    panel.dataset.state = state;
    panel.querySelector('.body').replaceChildren(...content);
  }

  function drawSingleStat(panel, spec, resultSet) {
    const measure = spec.query.measures[0];
    const row = resultSet.rawData()[0];
    const value = row ? row[measure] : null;
    const unit = value === null || value === undefined ? '' : spec.unit || '';
    setState(panel, 'done', el('p', { class: 'stat' },
      el('span', { class: 'value' }, formatNumber(value)),
      unit ? el('span', { class: 'unit' }, unit) : ''));
  }

  function drawChart(panel, spec, resultSet) {
    const pivot = resultSet.chartPivot();
    const series = resultSet.seriesNames();
    const box = el('div', { class: 'chart' });
    setState(panel, 'done', box);
    const chart = window.echarts.init(box, null, { renderer: 'canvas' });
    charts.push(chart);
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      grid: { containLabel: true, left: 8, right: 24, top: 16, bottom: 8 },
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: pivot.map((r) => String(r.x).slice(0, 10)) },
      yAxis: { type: 'value', minInterval: 1 },
      series: series.map((s) => ({
        name: s.shortTitle || s.title,
        type: spec.visualization === 'LineChart' ? 'line' : 'bar',
        data: pivot.map((r) => r[s.key]),
        showSymbol: pivot.length <= 31,
      })),
    });
  }

  function drawTable(panel, spec, resultSet) {
    const columns = resultSet.tableColumns();
    const rows = resultSet.tablePivot();
    const head = el('tr', {}, ...columns.map((c) => el('th', { scope: 'col', class: c.type === 'number' ? 'num' : '' }, c.shortTitle || c.title)));
    const body = rows.length
      ? rows.map((r) => el('tr', {}, ...columns.map((c) => (c.type === 'number'
        ? el('td', { class: 'num' }, formatNumber(r[c.key]))
        : el('td', {}, r[c.key] === null || r[c.key] === undefined ? '–' : String(r[c.key]))))))
      : [el('tr', {}, el('td', { colSpan: columns.length, class: 'empty' }, 'No data in this date range'))];
    setState(panel, 'done', el('div', { class: 'table' }, el('table', {}, el('thead', {}, head), el('tbody', {}, ...body))));
  }

  const draw = {
    SingleStat: drawSingleStat, LineChart: drawChart, ColumnChart: drawChart, DataTable: drawTable,
    Funnel: drawFunnel,
  };

  // refusal is the API's message for a failed load, read where GitLab's
  // frontend reads it (error.response.message).
  function refusal(error) {
    const r = error.response || {};
    if (r.message) return r.message;
    if (r.error) return r.error;
    if (!error.status) return 'The API could not be reached (network error, or a CORS setting that does not allow this page)';
    return error.message || `HTTP ${error.status}`;
  }

  async function loadPanel(api, panel, spec, query, mine) {
    const started = performance.now();
    let polls = 0;
    setState(panel, 'loading', el('p', { class: 'loading' }, 'Loading…'));
    try {
      const resultSet = await api.load(query, {
        castNumerics: true,
        mutexObj: mutex,
        mutexKey: spec.name,
        // The API answers "Continue wait" while Cube is still computing;
        // the client asks again by itself, and the panel says so.
        progressCallback: () => {
          if (drawing !== mine) return;
          polls += 1;
          const seconds = Math.round((performance.now() - started) / 1000);
          setState(panel, 'waiting', el('p', { class: 'loading' },
            `Still loading: Cube is computing this panel (${seconds} s, asked ${polls + 1} times)…`));
        },
      });
      if (drawing !== mine) return;
      draw[spec.visualization](panel, spec, resultSet);
    } catch (error) {
      if (drawing !== mine) return;
      setState(panel, 'error', el('p', { class: 'error' }, refusal(error)));
      panel.dataset.status = error.status || '';
    }
  }

  // ---- funnels -----------------------------------------------------------

  // funnelsOf returns the funnel cubes of a project's meta (name, title,
  // description), by title: every cube but GitLab's own with a number
  // measure count, a number dimension step and a time dimension date. All
  // three come from tenants' definitions: they are only ever used as text
  // and in query JSON.
  function funnelsOf(meta) {
    const cubes = (meta && meta.meta && Array.isArray(meta.meta.cubes)) ? meta.meta.cubes : [];
    const has = (members, name, type) => Array.isArray(members)
      && members.some((m) => m && m.name === name && m.type === type);
    return cubes
      .filter((c) => c && typeof c.name === 'string' && !GITLAB_CUBES.has(c.name)
        && has(c.measures, `${c.name}.count`, 'number')
        && has(c.dimensions, `${c.name}.step`, 'number')
        && has(c.dimensions, `${c.name}.date`, 'time'))
      .map((c) => ({
        name: c.name,
        title: typeof c.title === 'string' && c.title ? c.title : c.name,
        // What the steps are (the backend writes them there), as text.
        description: typeof c.description === 'string' ? c.description : '',
      }))
      .sort((a, b) => a.title.localeCompare(b.title));
  }

  // funnelQuery is the load GitLab's frontend sends for a funnel: users by
  // step, the page's date range on the funnel's date.
  function funnelQuery(name, from, to) {
    return {
      measures: [`${name}.count`],
      dimensions: [`${name}.step`],
      filters: [{ member: `${name}.date`, operator: 'inDateRange', values: [from, to] }],
    };
  }

  // funnelSteps reads a funnel's answer: one row per step, its users
  // counted cumulatively (those who reached the step or a later one), in
  // step order, with each step's conversion from the first in percent.
  function funnelSteps(name, resultSet) {
    const steps = resultSet.rawData()
      .map((r) => ({ step: Number(r[`${name}.step`]), users: Number(r[`${name}.count`]) }))
      .filter((s) => Number.isSafeInteger(s.step) && Number.isFinite(s.users))
      .sort((a, b) => a.step - b.step);
    const first = steps.length ? steps[0].users : 0;
    return steps.map((s) => ({ ...s, conversion: first > 0 ? (100 * s.users) / first : null }));
  }

  function formatPercent(v) {
    return v === null ? '–' : `${percentFormat.format(v)}%`;
  }

  // funnelTooltip builds the tooltip as elements, never HTML text.
  function funnelTooltip(steps) {
    return (params) => {
      const s = steps[params[0].dataIndex];
      return el('div', {}, el('strong', {}, `Step ${s.step}`), el('br'),
        `${formatNumber(s.users)} users, ${formatPercent(s.conversion)} of step 1`);
    };
  }

  function drawFunnel(panel, spec, resultSet) {
    const steps = funnelSteps(spec.funnel, resultSet);
    if (!steps.length || !steps[0].users) {
      setState(panel, 'done', el('p', { class: 'empty' }, 'No users reached the first step in this date range'));
      return;
    }
    const box = el('div', { class: 'chart' });
    const table = el('table', {},
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col' }, 'Step'),
        el('th', { scope: 'col', class: 'num' }, 'Users'),
        el('th', { scope: 'col', class: 'num' }, 'Conversion'))),
      el('tbody', {}, ...steps.map((s) => el('tr', {},
        el('td', {}, `Step ${s.step}`),
        el('td', { class: 'num' }, formatNumber(s.users)),
        el('td', { class: 'num' }, formatPercent(s.conversion))))));
    setState(panel, 'done', box, el('div', { class: 'table' }, table));
    const chart = window.echarts.init(box, null, { renderer: 'canvas' });
    charts.push(chart);
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      grid: { containLabel: true, left: 8, right: 24, top: 24, bottom: 8 },
      tooltip: { trigger: 'axis', formatter: funnelTooltip(steps) },
      xAxis: { type: 'category', data: steps.map((s) => `Step ${s.step}`) },
      yAxis: { type: 'value', minInterval: 1 },
      series: [{
        name: 'Users',
        type: 'bar',
        data: steps.map((s) => s.users),
        label: { show: true, position: 'top', formatter: (p) => formatPercent(steps[p.dataIndex].conversion) },
      }],
    });
  }

  // drawFunnels adds a Funnels section when the project's meta lists
  // funnels, and loads each; it answers with a note for the status line
  // when the meta could not be read (the panels then show why).
  async function drawFunnels(api, main, range, mine) {
    let meta;
    try {
      meta = await api.meta({ mutexObj: mutex, mutexKey: 'funnels:meta' });
    } catch (error) {
      return drawing === mine ? `funnels not listed: ${refusal(error)}` : '';
    }
    if (drawing !== mine) return '';
    const funnels = funnelsOf(meta);
    if (!funnels.length) return '';
    const wide = el('div', { class: 'wide' });
    const loads = funnels.map((f) => {
      const spec = { name: `funnel:${f.name}`, funnel: f.name, title: f.title, visualization: 'Funnel' };
      const panel = panelElement(spec);
      panel.dataset.funnel = f.name;
      if (f.description) panel.querySelector('h3').after(el('p', { class: 'about' }, f.description));
      wide.append(panel);
      return loadPanel(api, panel, spec, funnelQuery(f.name, range.from, range.to), mine);
    });
    main.append(el('section', { class: 'dashboard', id: 'funnels', 'data-dashboard': 'funnels' },
      el('h2', {}, 'Funnels'),
      el('p', { class: 'description' }, 'Users who went through each funnel\'s steps in order, within its time to convert; each step\'s conversion from the first.'),
      wide));
    $('nav').append(navLink('funnels', 'Funnels'));
    await Promise.all(loads);
    return '';
  }

  function panelElement(spec) {
    return el('article', { class: `panel ${spec.visualization}`, 'data-panel': spec.name, 'data-visualization': spec.visualization },
      el('h3', {}, spec.title), el('div', { class: 'body' }));
  }

  function navLink(slug, title) {
    return el('a', { href: `#${slug}`, onclick: (e) => {
      e.preventDefault();
      $(slug).scrollIntoView();
    } }, title);
  }

  async function drawDashboards(c, view) {
    const mine = ++drawing;
    charts.forEach((chart) => chart.dispose());
    charts = [];
    const main = $('dashboards');
    Object.assign(main.dataset, { state: 'drawing', project: view.project, days: view.days });
    const now = new Date();
    const from = new Date(now);
    from.setUTCDate(from.getUTCDate() - view.days);
    const range = { from: isoDay(from), to: isoDay(now) };
    const api = cubeApi(c, view.project);
    const loads = [];
    const sections = config.dashboards.map((d) => {
      // Single stats in a row of their own, charts and tables below.
      const stats = el('div', { class: 'stats' });
      const wide = el('div', { class: 'wide' });
      for (const spec of d.panels) {
        const panel = panelElement(spec);
        (spec.visualization === 'SingleStat' ? stats : wide).append(panel);
        loads.push(loadPanel(api, panel, spec, dated(spec.query, view.days, now), mine));
      }
      return el('section', { class: 'dashboard', id: d.slug, 'data-dashboard': d.slug },
        el('h2', {}, d.title), el('p', { class: 'description' }, d.description), stats, wide);
    });
    main.replaceChildren(...sections);
    $('nav').replaceChildren(...config.dashboards.map((d) => navLink(d.slug, d.title)));
    const about = `Project ${view.project}, last ${view.days} days (${range.from} to ${range.to}, UTC)`;
    $('status').textContent = `${about}: loading…`;
    const started = performance.now();
    const [funnelsNote] = await Promise.all([drawFunnels(api, main, range, mine), ...loads]);
    if (drawing !== mine) return;
    const refused = main.querySelectorAll('.panel[data-state="error"]').length;
    $('status').textContent = `${about}: drawn in ${((performance.now() - started) / 1000).toFixed(1)} s`
      + `${refused ? `, ${refused} panels refused` : ''}${funnelsNote ? `, ${funnelsNote}` : ''}.`;
    main.dataset.state = 'drawn';
  }

  // ---- start --------------------------------------------------------------

  async function start() {
    try {
      local = await fetchLocal(); // a fresh token before each drawing
    } catch (error) {
      $('status').textContent = `The local stack did not answer: ${error.message}`;
      return;
    }
    showConnection();
    const c = connection();
    if (!c) {
      $('status').textContent = 'Enter the API\'s base URL, a caller token and the projects it may read.';
      $('dashboards').replaceChildren();
      $('dashboards').dataset.state = 'unconnected';
      return;
    }
    const view = viewFromHash(c);
    showControls(c, view);
    await drawDashboards(c, view);
  }

  async function init() {
    config = await fetchJSON('dashboards.json');
    $('project').addEventListener('change', (e) => setHash({ ...viewFromHash(connection()), project: Number(e.target.value) }));
    $('range').addEventListener('change', (e) => setHash({ ...viewFromHash(connection()), days: Number(e.target.value) }));
    $('connection-form').addEventListener('submit', onConnect);
    $('connection-form').apiUrl.addEventListener('input', (e) => e.target.setCustomValidity(''));
    $('forget').addEventListener('click', onForget);
    window.addEventListener('hashchange', () => {
      if (!/^#(project|days)=/.test(location.hash)) return; // a jump to a dashboard
      start();
    });
    window.addEventListener('resize', () => charts.forEach((chart) => chart.resize()));
    await start();
  }

  init().catch((error) => {
    $('status').textContent = `The page could not start: ${error.message}`;
  });
})();
