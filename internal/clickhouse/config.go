package clickhouse

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
)

// TenantProfile is the settings profile of the tenants' users.
const TenantProfile = "product_analytics_tenant"

// serverConfig is the server's config.xml: HTTP on loopback only, on a
// port the kernel picks, everything under dir, the server's zone UTC.
// Written in the form ClickHouse 18.16 reads, which current releases still
// read.
func serverConfig(dir string, logQueries bool) string {
	path := func(name string) string { return xmlText(filepath.Join(dir, name) + "/") }
	queryLog := ""
	if logQueries {
		queryLog = `
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <flush_interval_milliseconds>1000</flush_interval_milliseconds>
  </query_log>`
	}
	return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <console>1</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>0</http_port>
  <path>` + path("data") + `</path>
  <tmp_path>` + path("tmp") + `</tmp_path>
  <user_files_path>` + path("user_files") + `</user_files_path>
  <format_schema_path>` + path("format_schemas") + `</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>32</max_concurrent_queries>` + queryLog + `
</yandex>
`
}

// usersConfig is the server's users.xml: the administrator, and for each
// tenant a user of its appId whose password derives from key, in the
// read-only profile, allowed its own database only. This is the form
// ClickHouse before SQL-driven access control (before 20.4) takes;
// cube/README.md has the CREATE USER statements of current releases.
func usersConfig(adminPassword string, tenants []int64, key string, logQueries bool) string {
	var b strings.Builder
	log := ""
	if logQueries {
		log = "<log_queries>1</log_queries>"
	}
	fmt.Fprintf(&b, `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>%s</default>
    <%s>
      <readonly>1</readonly>%s
    </%s>
  </profiles>
  <quotas><default/></quotas>
  <users>
    <%s>
      <password_sha256_hex>%s</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </%s>
`, log, TenantProfile, log, TenantProfile, Admin, sha256Hex(adminPassword), Admin)
	for _, p := range tenants {
		app := AppID(p)
		fmt.Fprintf(&b, `    <%s>
      <password_sha256_hex>%s</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>%s</profile>
      <quota>default</quota>
      <allow_databases><database>%s</database></allow_databases>
    </%s>
`, app, sha256Hex(TenantPassword(key, app)), TenantProfile, app, app)
	}
	b.WriteString("  </users>\n</yandex>\n")
	return b.String()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
