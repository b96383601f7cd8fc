package clickhouse

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestListeningPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ports, err := listeningPorts(ctx, os.Getpid())
	if err != nil || !slices.Contains(ports, port) {
		t.Errorf("got %v, %v; want a list holding %d", ports, err, port)
	}
	ln.Close()
	if ports, err := listeningPorts(ctx, os.Getpid()); err != nil || slices.Contains(ports, port) {
		t.Errorf("after closing: got %v, %v; want a list without %d", ports, err, port)
	}
}

// TestUsersConfig reads users.xml back: each tenant is read-only, allowed
// its own database only, with the password its key derives.
func TestUsersConfig(t *testing.T) {
	const key = "a key of at least thirty-two characters"
	var parsed struct {
		Profiles struct {
			Tenant struct {
				Readonly string `xml:"readonly"`
			} `xml:"product_analytics_tenant"`
		} `xml:"profiles"`
		Users struct {
			Users []struct {
				XMLName   xml.Name
				Password  string   `xml:"password_sha256_hex"`
				Profile   string   `xml:"profile"`
				Databases []string `xml:"allow_databases>database"`
				IPs       []string `xml:"networks>ip"`
			} `xml:",any"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal([]byte(usersConfig("admin-password", []int64{1, 22}, key, false)), &parsed); err != nil {
		t.Fatal(err)
	}
	if got := parsed.Profiles.Tenant.Readonly; got != "1" {
		t.Errorf("the tenants' profile has readonly %q, want 1", got)
	}
	var names []string
	for _, u := range parsed.Users.Users {
		name := u.XMLName.Local
		names = append(names, name)
		if !slices.Equal(u.IPs, []string{"127.0.0.1", "::1"}) {
			t.Errorf("%s connects from %v, want loopback only", name, u.IPs)
		}
		want := sha256Hex("admin-password")
		if name != Admin {
			want = sha256Hex(TenantPassword(key, name))
			if u.Profile != TenantProfile || !slices.Equal(u.Databases, []string{name}) {
				t.Errorf("%s: profile %q, databases %v; want %s and its own database only", name, u.Profile, u.Databases, TenantProfile)
			}
		}
		if u.Password != want {
			t.Errorf("%s: password hash %s, want %s", name, u.Password, want)
		}
	}
	if want := []string{Admin, "gitlab_project_1", "gitlab_project_22"}; !slices.Equal(names, want) {
		t.Errorf("users %v, want %v", names, want)
	}
}

func TestTenantPassword(t *testing.T) {
	a, b := TenantPassword("k1", "gitlab_project_1"), TenantPassword("k1", "gitlab_project_2")
	if len(a) != 64 || a == b || a == TenantPassword("k2", "gitlab_project_1") || a != TenantPassword("k1", "gitlab_project_1") {
		t.Errorf("passwords: %s %s", a, b)
	}
}

func TestNullsAsN(t *testing.T) {
	in := "a,b,c\nx,,\"y, z\"\n,\"q\"\"r\",1\n"
	r := csv.NewReader(strings.NewReader(in))
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := nullsAsN(r, &out); err != nil {
		t.Fatal(err)
	}
	if want := "x,\\N,\"y, z\"\n\\N,\"q\"\"r\",1\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestHasDateTime64(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{
		{"18.16.1", false},
		{"19.17.4.11", false},
		{"20.1.2.4", true},
		{"26.7.2.1", true},
		{"", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			if got := (&Server{Version: tc.version}).HasDateTime64(); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		name string
		ddl  string
		want []string
	}{
		{"one without an end", "CREATE TABLE a (x Int32)\n", []string{"CREATE TABLE a (x Int32)"}},
		{"two, each ended", "-- a; comment\nCREATE TABLE a (x Int32)\n;\nCREATE TABLE b (y Int32)\n  ;  \n", []string{"-- a; comment\nCREATE TABLE a (x Int32)", "CREATE TABLE b (y Int32)"}},
		{"a semicolon inside a line is no end", "SELECT ';'\n;\n", []string{"SELECT ';'"}},
		{"empty statements are dropped", ";\n\n;\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Statements(tt.ddl); !slices.Equal(got, tt.want) {
				t.Errorf("Statements(%q) = %q, want %q", tt.ddl, got, tt.want)
			}
		})
	}
}

// TestSchemaStatements reads the production DDL as the loader does: the
// events, the sessions table and the view that fills it, in that order.
func TestSchemaStatements(t *testing.T) {
	ddl, err := os.ReadFile("../../cube/schema/snowplow_events.clickhouse.sql")
	if err != nil {
		t.Fatal(err)
	}
	stmts := Statements(string(ddl))
	want := []string{"CREATE TABLE {{schema}}.snowplow_events", "CREATE TABLE {{schema}}.sessions", "CREATE MATERIALIZED VIEW {{schema}}.sessions_mv"}
	if len(stmts) != len(want) {
		t.Fatalf("got %d statements, want %d: %q", len(stmts), len(want), stmts)
	}
	for i, w := range want {
		if !strings.Contains(stmts[i], w) {
			t.Errorf("statement %d does not hold %q:\n%s", i+1, w, stmts[i])
		}
	}
}

// TestMigrationMatchesSchema: the migration of an existing database creates
// the very sessions table and view a new database gets, and backfills with
// the view's own SELECT.
func TestMigrationMatchesSchema(t *testing.T) {
	read := func(name string) []string {
		b, err := os.ReadFile("../../cube/schema/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, stmt := range Statements(string(b)) {
			var code []string
			for line := range strings.Lines(stmt) {
				if !strings.HasPrefix(strings.TrimSpace(line), "--") {
					code = append(code, strings.TrimRight(line, "\n"))
				}
			}
			out = append(out, strings.ReplaceAll(strings.TrimSpace(strings.Join(code, "\n")), "{{schema}}", "gitlab_project_<id>"))
		}
		return out
	}
	schema, migration := read("snowplow_events.clickhouse.sql"), read("sessions-migration.clickhouse.sql")
	if len(schema) != 3 || len(migration) != 4 {
		t.Fatalf("got %d statements in the schema and %d in the migration, want 3 and 4", len(schema), len(migration))
	}
	_, viewSelect, _ := strings.Cut(schema[2], " AS\n")
	tests := []struct {
		name      string
		got, want string
	}{
		{"sessions table", migration[0], schema[1]},
		{"materialized view", migration[1], schema[2]},
		{"backfill", migration[2], "INSERT INTO gitlab_project_<id>.sessions\n" + viewSelect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("the migration's\n%s\nis not the schema's\n%s", tt.got, tt.want)
			}
		})
	}
}
