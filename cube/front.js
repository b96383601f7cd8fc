'use strict';

// What stands in front of Cube's own code in the local Cube (server.js): one
// tenant's request, whatever its route, method, body or shape, must not end
// the process, leak how Cube is installed, flood the log, or take more than
// its share of the one event loop every tenant shares.
//
// mountFront runs before Cube's routes: only the routes a client needs, a
// bounded body, at most `maxInFlight` requests of each tenant at once (a few
// more wait briefly, then 429), and a blend's queries checked as a whole.
// mountBack runs after them: any error a route leaves over is answered 500
// without a stack. protectProcess keeps an error no one caught from ending
// the process.

const express = require('express');
const jwt = require('jsonwebtoken');
const Layer = require('express/lib/router/layer');
const { APP_ID } = require('./tenantdb');

// The routes a client needs, with the methods Cube serves them with. GitLab's
// dashboards and Cube's own client call load and meta (GET, or POST past
// 2,000 characters of URL), the API also dry-run; sql is Cube's documented
// way to see a query's SQL. subscribe is a websocket route, not served here.
// Everything else Cube registers (pre-aggregations, jobs, GraphQL, its
// production-mode page) is refused before Cube's code runs.
const ROUTES = new Map([
  ['/cubejs-api/v1/load', ['GET', 'POST']],
  ['/cubejs-api/v1/sql', ['GET', 'POST']],
  ['/cubejs-api/v1/dry-run', ['GET', 'POST']],
  ['/cubejs-api/v1/meta', ['GET']],
  ['/readyz', ['GET', 'HEAD']],
  ['/livez', ['GET', 'HEAD']],
]);
// Routes that take a query, and routes that need no token.
const LOAD_ROUTE = '/cubejs-api/v1/load';
const QUERY_ROUTES = new Set(['/cubejs-api/v1/load', '/cubejs-api/v1/sql', '/cubejs-api/v1/dry-run']);
const PROBES = new Set(['/readyz', '/livez']);

// The API caps a blend at 10 queries; Cube itself takes any number.
const MAX_QUERIES = 10;
// Cube's own JSON parser stops at 1 MB; the same bound for every body.
const MAX_BODY_BYTES = 1024 * 1024;
const DRAINED_BODY_BYTES = 8 * MAX_BODY_BYTES;

// Log bounds: each string of a logged record, and each line.
const LOG_STRING = 1024;
const LOG_LINE = 16 * 1024;
const VERBOSE_LOG_STRING = 16 * 1024;
const VERBOSE_LOG_LINE = 64 * 1024;
const LOG_ITEMS = 100;

// How long a client waits before asking again after a 429: an in-flight
// request usually ends within milliseconds, at most within Cube's
// continue-wait timeout.
const RETRY_AFTER_SECONDS = 1;

// The same token rules as Cube's checkAuth (server.js): HS256 with the secret,
// exp honoured, appId gitlab_project_<digits>. Returns the payload, or throws.
function verifyTenantToken(token, secret) {
  const payload = jwt.verify(token, secret, { algorithms: ['HS256'] });
  if (!payload || typeof payload !== 'object' || !APP_ID.test(String(payload.appId))) {
    throw new Error('appId is not gitlab_project_<id>');
  }
  return payload;
}

// Cube's own reading of the Authorization header: "<jwt>" or "<scheme> <jwt>".
function tokenOf(req) {
  const auth = req.headers.authorization;
  if (typeof auth !== 'string') return undefined;
  const parts = auth.split(' ', 2);
  return parts.length === 1 ? parts[0] : parts[1];
}

// --- log bounds ---------------------------------------------------------

// A JSON Web Token anywhere in a string (a client may put one in a URL,
// which Cube logs with an auth error): never logged.
const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

function boundedValue(maxString, maxItems) {
  return function replace(key, value) {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'string') {
      const s = value.includes('eyJ') ? value.replace(JWT, '<token>') : value;
      return s.length > maxString
        ? `${s.slice(0, maxString)}...[${s.length - maxString} more characters]`
        : s;
    }
    if (Array.isArray(value)) {
      return value.length > maxItems
        ? value.slice(0, maxItems).concat(`...[${value.length - maxItems} more items]`)
        : value;
    }
    if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length > maxItems) {
        const out = {};
        for (const k of keys.slice(0, maxItems)) out[k] = value[k];
        out['...'] = `${keys.length - maxItems} more keys`;
        return out;
      }
    }
    return value;
  };
}

// boundedLine is record as one JSON line of at most maxLine bytes: each
// string cut to maxString characters and each list or object to 100 items,
// then tighter if the line is still too long, and at worst the record's
// time, message and appId alone. A record JSON cannot write (a cycle, a
// nesting too deep) comes out the same way.
function boundedLine(record, { maxString = LOG_STRING, maxLine = LOG_LINE } = {}) {
  const tries = [[maxString, LOG_ITEMS], [Math.min(maxString, 128), 10]];
  let size = 0;
  for (const [s, n] of tries) {
    let line;
    try {
      line = JSON.stringify(record, boundedValue(s, n));
    } catch (e) {
      break;
    }
    size = Buffer.byteLength(line);
    if (size <= maxLine) return line;
  }
  const { time, message, appId } = record;
  return JSON.stringify({
    time, message, appId, truncated: size ? `a line of ${size} bytes left out` : 'a record JSON cannot write',
  }, boundedValue(LOG_STRING, LOG_ITEMS));
}

// Counts a kind of event and logs it at most once per interval per key,
// with how many happened since its last line, so that a flood of them costs
// the log one bounded line per interval.
class SampledLog {
  constructor(log, message, intervalMs = 10000) {
    this.log = log;
    this.message = message;
    this.intervalMs = intervalMs;
    this.keys = new Map(); // key -> { last, since }
    this.total = 0;
  }

  note(key, fields) {
    this.total += 1;
    const now = Date.now();
    let k = this.keys.get(key);
    if (!k) {
      // Bounded: a key seen once per interval at most is forgotten after it.
      if (this.keys.size >= 1000) this.forget(now);
      k = { last: 0, since: 0 };
      this.keys.set(key, k);
    }
    k.since += 1;
    if (now - k.last < this.intervalMs) return;
    this.log(this.message, { ...fields, count: k.since, total: this.total });
    k.last = now;
    k.since = 0;
  }

  forget(now) {
    for (const [key, k] of this.keys) {
      if (now - k.last >= this.intervalMs) this.keys.delete(key);
    }
    if (this.keys.size >= 1000) this.keys.clear();
  }
}

// --- answers -------------------------------------------------------------

// Absolute paths of two or more parts (an install folder, a data file) in
// an error's text.
const PATH = /(^|[^A-Za-z0-9_.~-])(?:\/[A-Za-z0-9_.@~+-]+){2,}\/?/g;

// withoutInternals is an error answer without what only the server should
// see: the stack and Cube's plain messages go, absolute paths in the error
// become <path>. Answers without an error (data) are left as they are,
// untouched: their values are the tenant's own.
function withoutInternals(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('error' in body)) return body;
  const { stack, plainError, ...rest } = body;
  if (typeof rest.error === 'string') rest.error = rest.error.replace(PATH, '$1<path>');
  else if (rest.error !== null && typeof rest.error === 'object') rest.error = 'Internal Server Error';
  return rest;
}

function answer(res, status, error, headers = {}) {
  if (res.headersSent) return;
  res.set(headers);
  res.status(status).json({ error });
}

// What a body parser's error (a 4xx with a type) says to the client.
const BODY_ERRORS = {
  'entity.parse.failed': 'Request body is not valid JSON',
  'entity.too.large': `Request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MB`,
  'entity.verify.failed': 'Request body is not valid',
  'encoding.unsupported': 'Request body has a content encoding Cube does not read',
  'charset.unsupported': 'Request body has a charset Cube does not read',
  'request.aborted': 'Request body ended early',
  'request.size.invalid': 'Request body is not as long as its Content-Length',
  'stream.encoding.set': 'Request body could not be read',
  'stream.not.readable': 'Request body could not be read',
};

// answerError answers err, an error no route answered: a body's error with
// its 4xx status and a plain message, anything else 500, never its stack.
function answerError(res, err, req, failures) {
  const status = err && Number.isInteger(err.status) && err.status >= 400 && err.status < 500 ? err.status : 500;
  if (status === 500) {
    failures.note('500', { path: req.path, error: String(err && err.message ? err.message : err) });
    answer(res, 500, 'Internal Server Error');
    return;
  }
  // A body left partly unread is not worth reading on: the connection ends.
  answer(res, status, BODY_ERRORS[err.type] || 'Bad Request', status === 413 ? { Connection: 'close' } : {});
}

// --- fair share ------------------------------------------------------------

// InFlight bounds each tenant's requests at Cube: `max` at once; past that,
// up to `maxQueued` more wait (first come, first served) for at most
// `queueWaitMs`, and anything beyond is refused.
class InFlight {
  constructor({ max, maxQueued, queueWaitMs }) {
    this.max = max;
    this.maxQueued = maxQueued;
    this.queueWaitMs = queueWaitMs;
    this.tenants = new Map(); // appId -> { running, queue: [waiter] }
  }

  // acquire calls onSlot() once a slot is the request's, or onRefused(why)
  // if none came; it returns a function that gives the slot (or the place
  // in the queue) back, to call once the request has ended.
  acquire(appId, onSlot, onRefused) {
    let t = this.tenants.get(appId);
    if (!t) {
      t = { running: 0, queue: [] };
      this.tenants.set(appId, t);
    }
    let state = 'waiting';
    const release = () => {
      if (state === 'running') {
        state = 'done';
        const next = t.queue.shift();
        if (next) {
          clearTimeout(next.timer);
          next.start(); // the slot passes on: running stays the same
          return;
        }
        t.running -= 1;
      } else if (state === 'waiting') {
        state = 'done';
        const i = t.queue.indexOf(waiter);
        if (i >= 0) t.queue.splice(i, 1);
        clearTimeout(waiter.timer);
      } else {
        return;
      }
      if (t.running === 0 && t.queue.length === 0 && this.tenants.get(appId) === t) this.tenants.delete(appId);
    };
    const waiter = {
      timer: null,
      start: () => {
        state = 'running';
        onSlot();
      },
    };
    if (t.running < this.max) {
      t.running += 1;
      waiter.start();
      return release;
    }
    if (t.queue.length >= this.maxQueued || this.queueWaitMs === 0) {
      state = 'done';
      onRefused(t.running);
      return () => {};
    }
    waiter.timer = setTimeout(() => {
      release();
      onRefused(t.running, true);
    }, this.queueWaitMs);
    t.queue.push(waiter);
    return release;
  }
}

// --- queries ---------------------------------------------------------------

class BadQuery extends Error {}

// queriesOf returns the queries a load, sql or dry-run request carries (a
// JSON string or an object, one or an array), or undefined when it carries
// none (Cube answers that itself). It throws BadQuery when the text is not
// JSON.
function queriesOf(raw) {
  if (raw === undefined || raw === null || raw === '' || raw === 'undefined') return undefined;
  let query = raw;
  if (typeof raw === 'string') {
    try {
      query = JSON.parse(raw);
    } catch (e) {
      throw new BadQuery('query is not valid JSON');
    }
  }
  return query;
}

// --- mounting --------------------------------------------------------------

// catchRejections makes a rejected promise of any route or middleware an
// error of that request, as express 5 does: Cube's error handler answers
// it, instead of the request hanging and the rejection ending the process.
function catchRejections(log) {
  if (Layer.prototype.handle_request.frontWrapped) return;
  const handleRequest = Layer.prototype.handle_request;
  const handleError = Layer.prototype.handle_error;
  const settle = (ret, res, next) => {
    if (ret && typeof ret.then === 'function') {
      ret.then(undefined, (err) => {
        if (res.headersSent) {
          log('Error after the answer', { error: String(err && err.message ? err.message : err) });
          return;
        }
        next(err || new Error('a route rejected without a reason'));
      });
    }
  };
  Layer.prototype.handle_request = function handle(req, res, next) {
    const fn = this.handle;
    if (fn.length > 3) return next();
    try {
      settle(fn(req, res, next), res, next);
    } catch (err) {
      next(err);
    }
    return undefined;
  };
  Layer.prototype.handle_request.frontWrapped = true;
  Layer.prototype.handle_error = function handle(error, req, res, next) {
    const fn = this.handle;
    if (fn.length !== 4) return next(error);
    try {
      settle(fn(error, req, res, next), res, next);
    } catch (err) {
      next(err);
    }
    return undefined;
  };
}

// mountFront adds, to app, what runs before Cube's routes. options:
//   apiSecret      the tokens' key
//   maxInFlight    a tenant's requests at once (0: no limit)
//   maxQueued      a tenant's requests waiting for a slot
//   queueWaitMs    how long one waits before its 429
//   checkCall      when set, checks a call's queries as a whole (the query
//                  guard's), throwing the guard's Refusal; called with the
//                  queries and whether they came as an array (a blend)
//   Refusal        the class of checkCall's refusals
//   log            (message, fields) logger
function mountFront(app, options) {
  const { apiSecret, log } = options;
  catchRejections(log);
  // Every JSON answer of Cube's goes through here: error answers lose what
  // only the server should see.
  const json = app.response.json;
  app.response.json = function jsonWithoutInternals(body) {
    return json.call(this, withoutInternals(body));
  };

  const refusedRoutes = new SampledLog(log, 'Route refused');
  const refusedLimit = new SampledLog(log, 'Tenant over its in-flight limit');
  const refusedQueries = new SampledLog(log, 'Query refused before Cube');
  const failures = new SampledLog(log, 'Request failed');
  const refusedLarge = new SampledLog(log, 'Large answer over Cube\'s places for them');
  const large = options.maxLargeAnswers > 0
    ? new InFlight({ max: options.maxLargeAnswers, maxQueued: options.maxQueuedLarge || 64, queueWaitMs: options.queueWaitMs })
    : null;
  const limit = options.maxInFlight > 0
    ? new InFlight({ max: options.maxInFlight, maxQueued: options.maxQueued, queueWaitMs: options.queueWaitMs })
    : null;

  app.use((req, res, next) => {
    const methods = ROUTES.get(req.path);
    if (!methods) {
      refusedRoutes.note('404', { status: 404, method: req.method, path: req.path });
      answer(res, 404, 'Not Found');
      return;
    }
    if (!methods.includes(req.method)) {
      refusedRoutes.note('405', { status: 405, method: req.method, path: req.path });
      answer(res, 405, 'Method Not Allowed', { Allow: methods.join(', ') });
      return;
    }
    if (PROBES.has(req.path)) {
      next();
      return;
    }
    const length = Number(req.headers['content-length']);
    if (length > MAX_BODY_BYTES) {
      // A body a few times the bound is read and dropped, so that the
      // client, still sending it, reads the 413 rather than a broken pipe;
      // a larger one ends the connection.
      answer(res, 413, BODY_ERRORS['entity.too.large'], length > DRAINED_BODY_BYTES ? { Connection: 'close' } : {});
      return;
    }
    let payload;
    const token = tokenOf(req);
    try {
      payload = token ? verifyTenantToken(token, apiSecret) : null;
    } catch (e) {
      payload = null;
    }
    // Cube's checkAuth takes this rather than verify the same token again.
    if (payload) req.verifiedTenant = { token, payload };
    // An invalid token goes on to Cube's own 403.
    if (!payload || !limit) {
      next();
      return;
    }
    const { appId } = payload;
    const release = limit.acquire(appId, () => next(), (running, waited) => {
      // A load that waited its turn in the queue is told to ask again, as
      // Cube tells of a query still computing: clients (the API, Cube's
      // own) re-send it by themselves, so that a dashboard opening more
      // panels at once than a project's share loses none. A full queue is
      // refused.
      if (waited && req.path === LOAD_ROUTE) {
        answer(res, 200, 'Continue wait');
        return;
      }
      refusedLimit.note(appId, { appId, running, limit: limit.max });
      answer(res, 429, `This project already has ${running} requests running at Cube, the most one project may have at once `
        + `(CUBE_TENANT_MAX_IN_FLIGHT=${limit.max}): retry after ${RETRY_AFTER_SECONDS} s`,
      { 'Retry-After': String(RETRY_AFTER_SECONDS) });
    });
    // 'close' comes once the answer is sent or the client has gone.
    res.once('close', release);
  });

  // The body of a query route is read here, with Cube's own parser and
  // limit (Cube's parser then sees it read and skips it), so that its errors
  // are answered here: 413 and 400, never 500.
  const parse = express.json({ limit: MAX_BODY_BYTES });
  app.use((req, res, next) => {
    if (req.method !== 'POST' || !QUERY_ROUTES.has(req.path)) {
      next();
      return;
    }
    parse(req, res, (err) => {
      if (err) answerError(res, err, req, failures);
      else next();
    });
  });

  app.use((req, res, next) => {
    if (!QUERY_ROUTES.has(req.path)) {
      next();
      return;
    }
    const holder = req.method === 'POST' ? req.body : req.query;
    if (!holder || typeof holder !== 'object') {
      next();
      return;
    }
    let query;
    try {
      query = queriesOf(holder.query);
    } catch (e) {
      if (!(e instanceof BadQuery)) throw e;
      refusedQueries.note('json', { reason: e.message, path: req.path });
      answer(res, 400, e.message);
      return;
    }
    if (query === undefined) {
      next();
      return;
    }
    // Parsed once: Cube takes the object as it is.
    holder.query = query;
    const queries = Array.isArray(query) ? query : [query];
    if (queries.length > MAX_QUERIES) {
      const message = `query is a blend of ${queries.length} queries; send at most ${MAX_QUERIES} at once`;
      refusedQueries.note('blend', { reason: message, path: req.path });
      answer(res, 400, message);
      return;
    }
    let cells = 0;
    if (options.checkCall) {
      try {
        cells = Number(options.checkCall(queries, Array.isArray(query))) || 0;
      } catch (e) {
        if (!(options.Refusal && e instanceof options.Refusal)) {
          // A failure of the check itself: Cube's own guard (queryRewrite)
          // still checks each query, so the call goes on rather than fail.
          failures.note('checkCall', { path: req.path, error: String(e && e.message ? e.message : e) });
          next();
          return;
        }
        refusedQueries.note('guard', { reason: e.message, path: req.path });
        answer(res, 400, e.message);
        return;
      }
    }
    if (!large || req.path !== LOAD_ROUTE || cells <= options.largeCells) {
      next();
      return;
    }
    // A large answer waits for one of Cube's few places for them, whatever
    // its project: each holds up to a hundred megabytes of the one heap
    // while it is built, so their number, not each project's, bounds it.
    const release = large.acquire('large', () => next(), (running, waited) => {
      if (waited) {
        answer(res, 200, 'Continue wait');
        return;
      }
      refusedLarge.note('large', { cells, running, limit: large.max });
      answer(res, 429, `Cube is building ${running} large answers, the most it builds at once `
        + `(CUBE_MAX_LARGE_ANSWERS=${large.max}): retry after ${RETRY_AFTER_SECONDS} s, or ask for fewer rows`,
      { 'Retry-After': String(RETRY_AFTER_SECONDS) });
    });
    res.once('close', release);
  });
}

// mountBack adds, to app, what runs after Cube's routes: a route nothing
// answered (none should reach here) is 404, and an error Cube's own
// handler has not answered is 400 for a bad body, else 500, never with
// a stack.
function mountBack(app, log) {
  const failures = new SampledLog(log, 'Request failed');
  app.use((req, res) => answer(res, 404, 'Not Found'));
  // express tells error handlers by their four parameters.
  app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    if (res.headersSent) return; // Cube's handler answered it already
    answerError(res, err, req, failures);
  });
}

// protectProcess keeps an error no handler caught from ending the process:
// it is logged (sampled and bounded) and Cube goes on serving the other
// requests. The request it came from, if any, was answered by mountBack or
// by the client's own timeout.
function protectProcess(log) {
  const seen = new SampledLog(log, 'Uncaught error, still serving', 10000);
  const note = (kind) => (err) => {
    const error = err && err.stack ? err.stack : String(err);
    seen.note(kind, { kind, error });
  };
  process.on('unhandledRejection', note('unhandledRejection'));
  process.on('uncaughtException', note('uncaughtException'));
}

module.exports = {
  mountFront,
  mountBack,
  protectProcess,
  boundedLine,
  verifyTenantToken,
  withoutInternals,
  InFlight,
  ROUTES,
  MAX_QUERIES,
  MAX_BODY_BYTES,
  LOG_STRING,
  LOG_LINE,
  VERBOSE_LOG_STRING,
  VERBOSE_LOG_LINE,
};
