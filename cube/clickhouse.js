'use strict';

// Each tenant's ClickHouse connection logs in as that project's own
// read-only user, which may read the project's database and nothing else:
// the third wall between tenants on the production store, as tenantdb.js is
// on the local DuckDB files. server.js uses it with CUBE_DB_TYPE=clickhouse;
// a production cube.js uses it as cube/README.md shows.
//
// - User: gitlab_project_<id>, the token's appId, with the default database
//   of the same name; whoever creates a project's database creates its user
//   (cube/README.md has the statements for each ClickHouse version).
// - Password: HMAC-SHA256 of the appId under a key only Cube and that
//   provisioning know, so that no table of passwords is needed.
// - Driver: a new ClickHouseDriver per tenant. Cube keeps it with the
//   tenant's orchestrator (contextToOrchestratorId), tests its connection
//   first and releases it on shutdown.
//
// A project without a user fails at the first query with ClickHouse's
// authentication error, which the API answers as "404 Clickhouse Database
// Not Found": a project with no database has no user either.
//
// Environment:
//   CUBEJS_DB_HOST               ClickHouse's host (required)
//   CUBEJS_DB_PORT               its HTTP port (default 8123)
//   CUBEJS_DB_SSL=true           HTTPS
//   CUBE_TENANT_DB_PASSWORD_KEY  the key the tenants' passwords derive from
//                                (required, at least 32 characters)

const crypto = require('crypto');
const { ClickHouseDriver } = require('@cubejs-backend/clickhouse-driver');

const APP_ID = /^gitlab_project_[0-9]+$/;
const MIN_KEY_LENGTH = 32;

// The password of a tenant's ClickHouse user, in hex.
function tenantPassword(key, appId) {
  return crypto.createHmac('sha256', key).update(appId).digest('hex');
}

class ClickHouseTenants {
  constructor({ host, port = 8123, ssl = false, passwordKey, maxPoolSize = 4 }) {
    if (!host) throw new Error('the ClickHouse host is not set (CUBEJS_DB_HOST)');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad ClickHouse port ${port}`);
    if (typeof passwordKey !== 'string' || passwordKey.length < MIN_KEY_LENGTH) {
      throw new Error(`the tenants' password key must have at least ${MIN_KEY_LENGTH} characters (CUBE_TENANT_DB_PASSWORD_KEY)`);
    }
    this.host = host;
    this.port = port;
    this.protocol = ssl ? 'https:' : 'http:';
    this.passwordKey = passwordKey;
    this.maxPoolSize = maxPoolSize;
    // A readonly=1 user may change no setting, and the driver only leaves
    // its own (join_use_nulls, date_time_output_format) out in this mode,
    // which it reads from the environment alone.
    process.env.CUBEJS_DB_CLICKHOUSE_READONLY = 'true';
  }

  static fromEnv(env) {
    const port = env.CUBEJS_DB_PORT ? Number(env.CUBEJS_DB_PORT) : undefined;
    return new ClickHouseTenants({
      host: env.CUBEJS_DB_HOST,
      port,
      ssl: env.CUBEJS_DB_SSL === 'true',
      passwordKey: env.CUBE_TENANT_DB_PASSWORD_KEY,
    });
  }

  // A new driver for the tenant appId, logged in as its own user.
  get(appId) {
    // Checked again here: the appId becomes a user and database name.
    if (!APP_ID.test(String(appId))) throw new Error('securityContext.appId must look like gitlab_project_<id>');
    return new ClickHouseDriver({
      host: this.host,
      port: this.port,
      protocol: this.protocol,
      database: appId,
      username: appId,
      password: tenantPassword(this.passwordKey, appId),
      readOnly: true,
      maxPoolSize: this.maxPoolSize,
    });
  }

  // Cube releases each tenant's driver itself when it shuts down.
  async closeAll() {}
}

module.exports = { ClickHouseTenants, tenantPassword };
