'use strict';

// Opens a tenant's database exactly as the local Cube does (cube/tenantdb.js)
// and reports, as JSON on stdout, what SQL can do there:
//
//   node locked.js settings <data-dir> <app-id>   the instance's settings
//   node locked.js run <data-dir> <app-id>        each statement of a JSON array read
//                                                 from stdin, straight on the connection
//                                                 (no statement gate), in order
//   node locked.js gate                           the gate's verdict on each statement
//                                                 of a JSON array read from stdin

process.env.TZ = 'UTC';

const path = require('path');
const tenantdb = require(path.join(__dirname, '..', '..', '..', 'cube', 'tenantdb.js'));

const SETTINGS = [
  'access_mode', 'enable_external_access', 'autoload_known_extensions', 'autoinstall_known_extensions',
  'allow_community_extensions', 'allow_unsigned_extensions', 'lock_configuration',
  'allowed_directories', 'allowed_paths', 'allowed_configs', 'temp_directory', 'threads', 'memory_limit',
];

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => { text += chunk; });
    process.stdin.on('end', () => resolve(JSON.parse(text)));
    process.stdin.on('error', reject);
  });
}

function json(value) {
  return JSON.stringify(value, (key, v) => (typeof v === 'bigint' ? v.toString() : v));
}

async function withConnection(file, fn) {
  const instance = await tenantdb.openLocked(file);
  const connection = await instance.connect();
  try {
    return await fn(connection);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function main() {
  const [mode, dataDir, appId] = process.argv.slice(2);
  let file = null;
  if (mode !== 'gate') {
    file = tenantdb.projectFile(dataDir, appId);
    if (!require('fs').existsSync(file)) file = null;
  }
  const out = await withConnection(file, async (connection) => {
    if (mode === 'settings') {
      const reader = await connection.runAndReadAll(
        `SELECT name, value FROM duckdb_settings() WHERE name IN (${SETTINGS.map((s) => `'${s}'`).join(', ')})`);
      return Object.fromEntries(reader.getRowObjectsJS().map((r) => [r.name, String(r.value)]));
    }
    const statements = await readStdin();
    const results = [];
    for (const sql of statements) {
      if (mode === 'gate') {
        results.push({ refusal: await tenantdb.checkStatement(connection, sql) });
        continue;
      }
      try {
        const reader = await connection.runAndReadAll(sql);
        results.push({ rows: reader.getRowObjectsJS() });
      } catch (e) {
        results.push({ error: e.message });
      }
    }
    return results;
  });
  process.stdout.write(`${json(out)}\n`);
}

main().catch((e) => {
  console.error(`locked.js: ${e.stack || e.message}`);
  process.exit(1);
});
