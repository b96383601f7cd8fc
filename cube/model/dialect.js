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

const DIALECTS = {
  duckdb: {
    // Whole milliseconds between two timestamps.
    durationMs: (start, end) => `(epoch_ms(${end}) - epoch_ms(${start}))`,
    // The URL without its query string and fragment.
    baseUrl: (url) => `regexp_replace(${url}, '[?#].*$', '')`,
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
export const eventsTable = (securityContext) => {
  const appId = securityContext.appId.unsafeValue();
  if (!/^gitlab_project_[0-9]+$/.test(String(appId))) {
    throw new Error('securityContext.appId must look like gitlab_project_<id>');
  }
  return `${appId}.snowplow_events`;
};
