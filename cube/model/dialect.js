// The only place where the data model knows which database it runs on.
//
// The same model serves the local stack (DuckDB, through Cube's Postgres SQL
// dialect) and production (ClickHouse). Everything else in the model is
// written in SQL both accept; the few expressions that differ live here.
//
// The dialect is chosen by the Cube configuration, which adds `sqlDialect` to
// the request context (Cube's `extendContext`); the model sees it as
// COMPILE_CONTEXT.sqlDialect. A configuration that sets nothing gets
// ClickHouse, so a production Cube needs no change beyond its usual
// multi-tenant settings (driverFactory / contextToOrchestratorId per
// tenant, one contextToAppId for all).

// The browser and device columns a session takes from its events (the
// min() of theirs, see Sessions.js).
const CLIENT_COLUMNS = [
  `agent_name`, `agent_version`, `os_family`, `os_name`, `os_version`, `os_version_major`,
  `br_lang`, `doc_lang`, `viewport_size`,
];
// A session's columns, as Sessions.js defines them.
const SESSION_COLUMNS = [
  `session_id`, `domain_userid`, `session_index`, `start_at`, `end_at`, `duration_ms`, ...CLIENT_COLUMNS,
];

const DIALECTS = {
  duckdb: {
    // Whole milliseconds between two timestamps.
    durationMs: (start, end) => `(epoch_ms(${end}) - epoch_ms(${start}))`,
    // The URL without its query string and fragment.
    baseUrl: (url) => `regexp_replace(${url}, '[?#].*$', '')`,
    // The schema's sessions, one row each: the loader builds the table
    // (schema/sessions.sql), so a query reads rows rather than grouping
    // every event of the project.
    sessions: (schema) => `SELECT ${SESSION_COLUMNS.join(', ')}, user_key FROM ${schema}.sessions`,
    // What a distinct count of a session's users counts: the loader's
    // number for each user (schema/users.sql), one per domain_userid, which
    // DuckDB counts several times faster than the ids themselves.
    userKey: `user_key`,
    // What a time dimension adds. Cube's Postgres dialect casts a date
    // range's bounds to timestamptz, and DuckDB then converts every row's
    // TIMESTAMP (UTC) to compare, which also stops it from skipping row
    // groups by their time. Bound as strings, the bounds (UTC, as Cube
    // writes them) are cast to the column's TIMESTAMP once: the same range,
    // compared as stored.
    timeField: { fieldType: `string` },
  },
  clickhouse: {
    // Whole milliseconds for DateTime64 columns, whole seconds (times 1000)
    // for DateTime: toFloat64 reads DateTime as seconds and DateTime64 as
    // seconds with their fraction (checked on 18.16 and 26.7), where
    // toUnixTimestamp64Milli takes DateTime64 only and is missing from old
    // releases. Rounded: a double holds today's epoch seconds to about a
    // microsecond.
    durationMs: (start, end) => `toInt64(round((toFloat64(${end}) - toFloat64(${start})) * 1000))`,
    baseUrl: (url) => `cutQueryStringAndFragment(${url})`,
    // The schema's sessions from the partial aggregates the materialized
    // view keeps as events arrive (schema/snowplow_events.clickhouse.sql):
    // a session's rows merge into one here, whatever the table's merges
    // have done so far. The state columns are named apart from the results
    // so that no alias shadows a column; the optional ones hold 'v' and the
    // value, or 'w' for NULL (the DDL says why).
    sessions: (schema) => `
      SELECT
        session_id,
        minMerge(domain_userid_state) AS domain_userid,
        minMerge(session_index_state) AS session_index,
        minMerge(start_at_state) AS start_at,
        maxMerge(end_at_state) AS end_at,
        ${DIALECTS.clickhouse.durationMs('minMerge(start_at_state)', 'maxMerge(end_at_state)')} AS duration_ms,
        ${CLIENT_COLUMNS.map((c) => `substring(nullIf(minMerge(${c}_state), 'w'), 2) AS ${c}`).join(',\n        ')}
      FROM ${schema}.sessions
      GROUP BY session_id`,
    timeField: {},
    userKey: `domain_userid`,
  },
};

const dialectName = COMPILE_CONTEXT.sqlDialect || 'clickhouse';
if (!DIALECTS[dialectName]) {
  throw new Error(`Unknown sqlDialect '${dialectName}'`);
}

export const sql = DIALECTS[dialectName];

// Each project's events live in its own schema (ClickHouse: database)
// named after the token's appId. The name is read when a query's SQL is
// built, from that query's security context, never when the model is
// compiled: one compiled model then serves every project (the server maps
// every context to one appId), and the SQL still names the one schema the
// tenant's own connection can read. The API layer only signs appIds of the
// form gitlab_project_<digits>; checking again here keeps a malformed
// context from ever reaching SQL. A cube calls it with SECURITY_CONTEXT,
// which Cube binds to the querying tenant's context.
const tenantSchema = (securityContext) => {
  const appId = securityContext.appId.unsafeValue();
  if (!/^gitlab_project_[0-9]+$/.test(String(appId))) {
    throw new Error('securityContext.appId must look like gitlab_project_<id>');
  }
  return appId;
};

export const eventsTable = (securityContext) => `${tenantSchema(securityContext)}.snowplow_events`;

// The querying tenant's sessions, one row each, with the columns Sessions.js
// defines, from the store's sessions table (see eventsTable).
export const sessionsQuery = (securityContext) => sql.sessions(tenantSchema(securityContext));
