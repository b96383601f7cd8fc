'use strict';

// GitLab's product analytics funnels, as Cube builds them: each project's
// definition files (one YAML file per funnel) become cubes of that
// project's own compiled model, beside the shared one.
//
// - Rules: those of GitLab, and of the API (shared/funnels in the Go
//   code; a test checks both give the same verdict on the same files).
//   Cube checks every file itself: a definition is a tenant's text.
// - Sources: a folder (<dir>/<project id>/*.yml), an S3 prefix
//   (<prefix><project id>/), or the project's repository through GitLab's
//   API at its default branch (.gitlab/analytics/funnels/), read with a
//   token of Cube's own: Cube compiles in the background, when no caller's
//   token exists.
// - A project's set is read again at most every refreshMs (and on its
//   first request); a change gives the project's model a new version, so
//   Cube compiles it again on its next request: a new, changed or deleted
//   funnel applies within refreshMs, without a restart.
// - Projects without funnels use the one shared model (server.js), as
//   before, and cost nothing more.
// - Nothing of a name or target is pasted into SQL: the generated model
//   file holds the funnel's name (checked: [a-z][a-z0-9_]*), its window (a
//   whole number) and its targets as hex; model/funnelSql.js compares
//   page paths with the targets decoded by the store (unhex).

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const yaml = require('js-yaml');

// The bounds and patterns of shared/funnels/funnels.go.
const LIMITS = {
  maxFileBytes: 64 * 1024,
  maxSteps: 20,
  maxFunnels: 50,
  maxNameLength: 64,
  maxTargetLength: 512,
  maxSecondsToConvert: 366 * 24 * 3600,
};
const STEP_NAME = /^[A-Za-z0-9_-]+$/;
const TARGET = /^[A-Za-z0-9_\-./]+$/;
const WHOLE = /^[1-9][0-9]{0,9}$/;
const CUBE_NAME = /^[a-z][a-z0-9_]*$/;
const DEFINITION = /^[^/\\]+\.ya?ml$/;
const APP_ID = /^gitlab_project_([0-9]{1,18})$/;
const GITLAB_FOLDER = '.gitlab/analytics/funnels';
// Names of JavaScript's objects' own properties: Cube keeps cubes in plain
// objects keyed by name (as funnels.go's reservedNames).
const RESERVED = ['constructor', 'prototype'];

const isDefinition = (file) => DEFINITION.test(file) && !file.startsWith('.');

// The funnel name of a file: its base name parameterized with '_' (see
// funnels.go's Name).
function funnelName(file) {
  const base = file.replace(/\.yml$/, '').replace(/\.yaml$/, '');
  const name = base.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  if (name === '') throw new Error('the file name gives no funnel name: it needs letters or digits');
  if (name.length > LIMITS.maxNameLength) {
    throw new Error(`the funnel name ${JSON.stringify(`${name.slice(0, LIMITS.maxNameLength)}...`)} is longer than ${LIMITS.maxNameLength} characters`);
  }
  if (!CUBE_NAME.test(name)) throw new Error(`the funnel name ${JSON.stringify(name)} must start with a letter`);
  if (RESERVED.includes(name)) throw new Error(`the funnel name ${JSON.stringify(name)} is reserved`);
  return name;
}

const SKIPPED = 'skipped';

// parse checks one definition file (a Buffer or string): { funnel },
// { skipped: true } for a file without seconds_to_convert or steps, or
// { invalid: reason }. Scalars are read as their text (YAML's failsafe
// schema), as the Go side reads them.
function parse(file, data) {
  const bad = (reason) => ({ invalid: reason });
  if (typeof file !== 'string' || !isDefinition(file)) return bad('is not a .yml or .yaml file name');
  let name;
  try {
    name = funnelName(file);
  } catch (e) {
    return bad(e.message);
  }
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
  if (bytes.length > LIMITS.maxFileBytes) return bad(`is larger than ${LIMITS.maxFileBytes} bytes`);
  let doc;
  try {
    doc = yaml.load(bytes.toString('utf8'), { schema: yaml.FAILSAFE_SCHEMA, filename: file });
  } catch (e) {
    return bad(`is not valid YAML: ${String(e.reason || e.message).split('\n')[0].slice(0, 200)}`);
  }
  if (doc === undefined || doc === null) return { skipped: true };
  if (typeof doc !== 'object' || Array.isArray(doc)) return bad('is not a YAML mapping of seconds_to_convert and steps');
  const own = (o, k) => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);
  const secs = own(doc, 'seconds_to_convert');
  const steps = own(doc, 'steps');
  if (secs === undefined || secs === null || steps === undefined || steps === null) return { skipped: true };
  if (typeof secs !== 'string' || !WHOLE.test(secs)) return bad('seconds_to_convert must be a whole number above 0');
  const window = Number(secs);
  if (window > LIMITS.maxSecondsToConvert) return bad(`seconds_to_convert must be at most ${LIMITS.maxSecondsToConvert} (a year)`);
  if (!Array.isArray(steps)) return bad('steps must be a list of steps');
  if (steps.length === 0) return bad('steps must list at least one step');
  if (steps.length > LIMITS.maxSteps) return bad(`has ${steps.length} steps: at most ${LIMITS.maxSteps}`);
  const out = [];
  for (let i = 0; i < steps.length; i += 1) {
    const s = steps[i];
    const at = i + 1;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) return bad(`step ${at} must be a mapping of name, action and target`);
    const step = {};
    for (const key of ['name', 'action', 'target']) {
      const v = own(s, key);
      if (typeof v !== 'string') return bad(`step ${at} needs a ${key}`);
      step[key] = v;
    }
    if (step.name.length > LIMITS.maxNameLength || !STEP_NAME.test(step.name)) {
      return bad(`step ${at}'s name must be letters, digits, '_' or '-' (at most ${LIMITS.maxNameLength})`);
    }
    if (step.action !== 'pageview') return bad(`step ${at}'s action must be pageview`);
    if (step.target.length > LIMITS.maxTargetLength || !TARGET.test(step.target)) {
      return bad(`step ${at}'s target must be a page path of letters, digits, '_', '-', '.' and '/' (at most ${LIMITS.maxTargetLength})`);
    }
    const prev = out.findIndex((p) => p.target === step.target);
    if (prev >= 0) return bad(`step ${at}'s target is step ${prev + 1}'s: a page may be one step only`);
    out.push(step);
  }
  return { funnel: { name, seconds_to_convert: window, steps: out } };
}

// read checks a project's files: { funnels, invalid }, as funnels.go's Read.
function read(files) {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const funnels = [];
  const invalid = [];
  for (const file of sorted) {
    const r = parse(file.name, file.data);
    if (r.skipped) continue;
    if (r.invalid) {
      invalid.push({ file: file.name, reason: r.invalid });
    } else if (funnels.some((f) => f.name === r.funnel.name)) {
      invalid.push({ file: file.name, reason: `another file already defines the funnel ${r.funnel.name}` });
    } else if (funnels.length === LIMITS.maxFunnels) {
      invalid.push({ file: file.name, reason: `the project has more than ${LIMITS.maxFunnels} funnels` });
    } else {
      funnels.push(r.funnel);
    }
  }
  funnels.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { funnels, invalid };
}

// The sources: files(projectId, signal) lists a project's definition files
// as [{ name, data }], a file over the bound with one byte more than it.

function dirSource(root) {
  return {
    describe: `folder ${root}`,
    async files(projectId) {
      const dir = path.join(root, String(projectId));
      let entries;
      try {
        entries = await fs.promises.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (e.code === 'ENOENT') return [];
        throw e;
      }
      const out = [];
      for (const e of entries) {
        // Regular files only: a link could make any file a definition.
        if (!e.isFile() || !isDefinition(e.name)) continue;
        let fh;
        try {
          fh = await fs.promises.open(path.join(dir, e.name), fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0));
        } catch (err) {
          if (err.code === 'ENOENT' || err.code === 'ELOOP') continue;
          throw err;
        }
        try {
          const buf = Buffer.alloc(LIMITS.maxFileBytes + 1);
          let n = 0;
          for (;;) {
            const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
            if (bytesRead === 0 || n + bytesRead >= buf.length) {
              n += bytesRead;
              break;
            }
            n += bytesRead;
          }
          out.push({ name: e.name, data: buf.subarray(0, n) });
        } finally {
          await fh.close();
        }
      }
      return out;
    },
  };
}

function s3Source({ bucket, prefix, client }) {
  const { ListObjectsV2Command, GetObjectCommand } = require('@aws-sdk/client-s3');
  return {
    describe: `s3://${bucket}/${prefix}`,
    async files(projectId, signal) {
      const at = `${prefix}${projectId}/`;
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: at, MaxKeys: 2 * LIMITS.maxFunnels }), { abortSignal: signal });
      const out = [];
      for (const o of list.Contents || []) {
        const name = o.Key.slice(at.length);
        if (!isDefinition(name)) continue;
        if (o.Size > LIMITS.maxFileBytes) {
          out.push({ name, data: Buffer.alloc(LIMITS.maxFileBytes + 1) });
          continue;
        }
        const obj = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }), { abortSignal: signal });
        const bytes = Buffer.from(await obj.Body.transformToByteArray());
        out.push({ name, data: bytes.subarray(0, LIMITS.maxFileBytes + 1) });
      }
      return out;
    },
  };
}

function gitlabSource({ url, token }) {
  const base = url.replace(/\/+$/, '');
  const get = async (u, signal, raw) => {
    const res = await fetch(u, { headers: { 'PRIVATE-TOKEN': token }, signal, redirect: 'error' });
    if (res.status === 404) return null;
    if (res.status !== 200) throw new Error(`GitLab answered ${res.status} for ${new URL(u).pathname}`);
    const buf = Buffer.from(await res.arrayBuffer());
    return raw ? buf.subarray(0, LIMITS.maxFileBytes + 1) : JSON.parse(buf.toString('utf8'));
  };
  return {
    describe: `GitLab ${base}`,
    async files(projectId, signal) {
      const project = `${base}/api/v4/projects/${projectId}`;
      const p = await get(project, signal);
      if (!p || typeof p.default_branch !== 'string' || p.default_branch === '') return [];
      const ref = encodeURIComponent(p.default_branch);
      const tree = await get(`${project}/repository/tree?per_page=100&ref=${ref}&path=${encodeURIComponent(GITLAB_FOLDER)}`, signal);
      const out = [];
      for (const e of Array.isArray(tree) ? tree : []) {
        if (!e || e.type !== 'blob' || !isDefinition(e.name) || e.path !== `${GITLAB_FOLDER}/${e.name}`) continue;
        const data = await get(`${project}/repository/files/${encodeURIComponent(e.path)}/raw?ref=${ref}`, signal, true);
        if (data) out.push({ name: e.name, data });
      }
      return out;
    },
  };
}

// sourceFromEnv picks the source the environment names, or none.
function sourceFromEnv(env) {
  if (env.CUBE_FUNNELS_DIR) return dirSource(path.resolve(env.CUBE_FUNNELS_DIR));
  if (env.CUBE_FUNNELS_S3_BUCKET) {
    const { S3Client } = require('@aws-sdk/client-s3');
    // The SDK reads AWS_ENDPOINT_URL_S3 and the region from the environment.
    const client = new S3Client({ forcePathStyle: env.CUBE_FUNNELS_S3_PATH_STYLE === '1' });
    return s3Source({ bucket: env.CUBE_FUNNELS_S3_BUCKET, prefix: env.CUBE_FUNNELS_S3_PREFIX || 'funnels/', client });
  }
  if (env.CUBE_FUNNELS_GITLAB_URL) {
    if (!env.CUBE_FUNNELS_GITLAB_TOKEN) throw new Error('CUBE_FUNNELS_GITLAB_URL needs CUBE_FUNNELS_GITLAB_TOKEN');
    return gitlabSource({ url: env.CUBE_FUNNELS_GITLAB_URL, token: env.CUBE_FUNNELS_GITLAB_TOKEN });
  }
  return null;
}

// Funnels keeps each project's set, read at most every refreshMs, and
// gives each project with funnels its model's version (a hash of the set).
class Funnels {
  constructor({ source, refreshMs = 30000, timeoutMs = 5000, max = 10000, log = () => {} }) {
    this.source = source;
    this.refreshMs = refreshMs;
    this.timeoutMs = timeoutMs;
    this.max = max;
    this.log = log;
    // appId -> { set, version, readAt, reading }
    this.entries = new Map();
  }

  // projectOf is the project id of a valid appId, or null.
  static projectOf(appId) {
    const m = APP_ID.exec(String(appId));
    return m ? m[1] : null;
  }

  // get returns the project's { funnels, version } (version null without
  // funnels), and reads the source again when the set is older than
  // refreshMs. A failed read keeps the last set read.
  async get(appId) {
    const project = Funnels.projectOf(appId);
    if (!project) return { funnels: [], version: null };
    let e = this.entries.get(appId);
    if (!e) {
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value);
      e = { set: { funnels: [] }, version: null, readAt: 0, reading: null, ok: false, refused: '[]' };
      this.entries.set(appId, e);
    }
    if (Date.now() - e.readAt >= this.refreshMs && !e.reading) {
      e.reading = this.refresh(appId, project, e).finally(() => { e.reading = null; });
    }
    // Only a project's first request waits for the read; later ones get
    // the set last read while the next read runs, and its result from the
    // request after it.
    if (!e.ok && e.reading) await e.reading;
    return { funnels: e.set.funnels, version: e.version };
  }

  // cached returns the set last read, without reading.
  cached(appId) {
    const e = this.entries.get(appId);
    return e ? { funnels: e.set.funnels, version: e.version } : { funnels: [], version: null };
  }

  async refresh(appId, project, e) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.timeoutMs);
    try {
      const files = await this.source.files(project, ac.signal);
      const set = read(files);
      const version = set.funnels.length > 0
        ? crypto.createHash('sha256').update(JSON.stringify(set.funnels)).digest('hex').slice(0, 16)
        : null;
      // Each refusal is logged once, when the files refused change.
      const refused = JSON.stringify(set.invalid);
      if (refused !== e.refused) {
        for (const inv of set.invalid) {
          this.log('Funnel refused', { appId, file: inv.file.slice(0, 100), reason: inv.reason });
        }
        e.refused = refused;
      }
      if (version !== e.version) this.log('Funnels changed', { appId, funnels: set.funnels.map((f) => f.name), version });
      e.set = set;
      e.version = version;
      e.ok = true;
      e.readAt = Date.now();
    } catch (err) {
      // The last set stays; the next request tries again after a while.
      e.readAt = Date.now() - this.refreshMs + Math.min(this.refreshMs, 5000);
      this.log('Funnels unreadable', { appId, source: this.source.describe, error: String(err && err.message).slice(0, 200) });
    } finally {
      clearTimeout(timer);
    }
  }
}

// The model file of a project's funnels. Everything in it is checked:
// names match [a-z][a-z0-9_]*, the window is a whole number, and targets
// are written as hex, so no tenant text is pasted as such.
function modelFile(funnels) {
  const lines = [
    '// A project\'s funnels, written by cube/funnels.js from checked definitions.',
    'import { funnelSql, funnelTitle, funnelDate } from \'./funnelSql\';',
    'import { refreshKey } from \'./refreshKey\';',
  ];
  for (const f of funnels) {
    if (!CUBE_NAME.test(f.name) || !Number.isInteger(f.seconds_to_convert)) throw new Error('an unchecked funnel reached the model');
    const hex = f.steps.map((s) => `'${Buffer.from(s.target, 'utf8').toString('hex')}'`).join(', ');
    // The steps' names and targets, for labels (Cube 0.33 has no cube
    // meta): checked patterns, and no SQL.
    const steps = f.steps.map((s, i) => `${i + 1}. ${s.name} (${s.target})`).join(', ');
    lines.push(`
cube(\`${f.name}\`, {
  sql: funnelSql(SECURITY_CONTEXT, FILTER_PARAMS.${f.name}.date, ${f.seconds_to_convert}, [${hex}]),
  title: funnelTitle('${f.name}'),
  refreshKey,
  description: \`Page views in order within ${f.seconds_to_convert} s: ${steps}\`,
  measures: {
    count: { sql: \`total\`, type: \`max\`, title: \`Count\` },
  },
  dimensions: {
    step: { sql: \`step\`, type: \`number\`, primaryKey: true, shown: true, title: \`Step\` },
    date: { sql: \`x\`, type: \`time\`, ...funnelDate, title: \`Date\` },
  },
});`);
  }
  return lines.join('\n');
}

// FunnelRepository is a project's model: the shared model's files and its
// funnels' file, as they are when Cube compiles it.
class FunnelRepository {
  constructor(base, funnels, appId) {
    this.base = base;
    this.funnels = funnels;
    this.appId = appId;
  }

  localPath() {
    return this.base.localPath();
  }

  async dataSchemaFiles() {
    const files = await this.base.dataSchemaFiles();
    const { funnels } = this.funnels.cached(this.appId);
    return files.concat([{ fileName: 'funnels.js', content: modelFile(funnels) }]);
  }
}

module.exports = {
  LIMITS, parse, read, funnelName, isDefinition, dirSource, s3Source, gitlabSource, sourceFromEnv,
  Funnels, FunnelRepository, modelFile, SKIPPED,
};
