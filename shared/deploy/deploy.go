// Package deploy places projects on Cube deployments. A project's
// deployment is the one explicitly placed for it, else the one rendezvous
// (highest random weight) hashing of the project id over the deployments'
// names ranks first: adding a deployment moves only the projects it now
// ranks first (about 1/n of them), and no project moves between the others.
package deploy

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Deployment is one Cube deployment.
type Deployment struct {
	// Name identifies the deployment in placements, metrics and logs; it is
	// also what projects are hashed over, so renaming one moves projects.
	Name string
	// URL is Cube's base address, without a trailing slash.
	URL string
	// KeySecretID names the Secrets Manager secret holding the deployment's
	// Cube API key (a name or an ARN).
	KeySecretID string
}

// MaxNameLength bounds a deployment's name: it is a metric dimension.
const MaxNameLength = 64

// Parse reads a list of deployments (CUBE_DEPLOYMENTS): entries separated
// by commas, each NAME=URL=KEY_SECRET_ID, for example
//
//	small=https://cube-small.example.com=cube-key-small,large-1=https://cube-large-1.example.com=arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key-large-1
//
// A name is 1 to 64 letters, digits, '-' or '_'; a URL is http(s) without
// '=' or ',' (a base address needs neither); the secret id is the rest of
// the entry. Names and URLs must be unique. Every problem is reported.
func Parse(spec string) ([]Deployment, error) {
	var deps []Deployment
	list, errs := entries(spec, "entry")
	for _, e := range list {
		d, err := parseEntry(e.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", e.pos, err))
			continue
		}
		deps = append(deps, d)
	}
	if len(deps) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no deployment is listed (NAME=URL=KEY_SECRET_ID, ...)"))
	}
	errs = append(errs, checkUnique(deps)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return deps, nil
}

// entry is one entry of a comma-separated spec: its text, trimmed, and its
// position from 1.
type entry struct {
	pos  int
	text string
}

// entries splits a comma-separated spec into its entries, in order. A
// trailing comma is harmless; an empty entry elsewhere is a typo, reported
// as an empty what.
func entries(spec, what string) ([]entry, []error) {
	var out []entry
	var errs []error
	parts := strings.Split(spec, ",")
	for i, text := range parts {
		text = strings.TrimSpace(text)
		switch {
		case text != "":
			out = append(out, entry{pos: i + 1, text: text})
		case i < len(parts)-1:
			errs = append(errs, fmt.Errorf("%s %d is empty", what, i+1))
		}
	}
	return out, errs
}

func parseEntry(entry string) (Deployment, error) {
	parts := strings.SplitN(entry, "=", 3)
	if len(parts) != 3 {
		return Deployment{}, fmt.Errorf("%q is not NAME=URL=KEY_SECRET_ID", entry)
	}
	d := Deployment{Name: strings.TrimSpace(parts[0]), URL: strings.TrimSpace(parts[1]), KeySecretID: strings.TrimSpace(parts[2])}
	if err := CheckName(d.Name); err != nil {
		return Deployment{}, err
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Deployment{}, fmt.Errorf("deployment %s: %q is not an http(s) base URL", d.Name, d.URL)
	}
	d.URL = strings.TrimRight(d.URL, "/")
	if d.KeySecretID == "" {
		return Deployment{}, fmt.Errorf("deployment %s: the key secret id is empty", d.Name)
	}
	return d, nil
}

// CheckName reports whether name is a valid deployment name: 1 to 64
// letters, digits, '-' or '_'. The names reach metrics and logs, so only
// these characters are allowed.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("deployment name %q must be 1 to %d characters", name, MaxNameLength)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("deployment name %q may hold only letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

func checkUnique(deps []Deployment) []error {
	var errs []error
	names := map[string]bool{}
	urls := map[string]string{}
	for _, d := range deps {
		if names[d.Name] {
			errs = append(errs, fmt.Errorf("deployment %s is listed twice", d.Name))
		}
		names[d.Name] = true
		// Two names on one Cube would split its projects' cache for nothing.
		if other, ok := urls[d.URL]; ok && other != d.Name {
			errs = append(errs, fmt.Errorf("deployments %s and %s have the same URL %s", other, d.Name, d.URL))
		}
		urls[d.URL] = d.Name
	}
	return errs
}

// ParsePlacements reads explicit placements (CUBE_PLACEMENTS): entries
// separated by commas, each PROJECT_ID=DEPLOYMENT_NAME, such as
// "42=large-1,7=large-1". An empty spec places nothing. A project placed
// twice is refused, even on the same deployment.
func ParsePlacements(spec string) (map[int64]string, error) {
	out := map[int64]string{}
	list, errs := entries(spec, "placement")
	for _, e := range list {
		entry := e.text
		id, name, ok := strings.Cut(entry, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("placement %q is not PROJECT_ID=DEPLOYMENT", entry))
			continue
		}
		id, name = strings.TrimSpace(id), strings.TrimSpace(name)
		project, err := strconv.ParseInt(id, 10, 64)
		if err != nil || project <= 0 {
			errs = append(errs, fmt.Errorf("placement %q: %q is not a project id (a positive whole number)", entry, id))
			continue
		}
		if err := CheckName(name); err != nil {
			errs = append(errs, fmt.Errorf("placement %q: %w", entry, err))
			continue
		}
		if prev, dup := out[project]; dup {
			errs = append(errs, fmt.Errorf("project %d is placed twice (%s and %s)", project, prev, name))
			continue
		}
		out[project] = name
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Router places projects: explicit placement first, else rendezvous hashing
// of the project id over the deployments' names. It is immutable, and safe
// for concurrent use.
type Router struct {
	deps       []Deployment
	seeds      []uint64 // each deployment's name hashed once
	placements map[int64]int
	byName     map[string]int
}

// NewRouter builds a router over deps (at least one, names unique) with
// placements naming listed deployments.
func NewRouter(deps []Deployment, placements map[int64]string) (*Router, error) {
	if len(deps) == 0 {
		return nil, errors.New("routing projects: no deployment")
	}
	r := &Router{deps: slices.Clone(deps), byName: map[string]int{}, placements: map[int64]int{}}
	var errs []error
	for i, d := range deps {
		if err := CheckName(d.Name); err != nil {
			errs = append(errs, err)
		}
		if _, dup := r.byName[d.Name]; dup {
			errs = append(errs, fmt.Errorf("deployment %s is listed twice", d.Name))
		}
		r.byName[d.Name] = i
		h := fnv.New64a()
		h.Write([]byte(d.Name))
		r.seeds = append(r.seeds, h.Sum64())
	}
	// Sorted, so that the errors read the same at every start.
	for _, project := range slices.Sorted(maps.Keys(placements)) {
		name := placements[project]
		i, ok := r.byName[name]
		if !ok {
			errs = append(errs, fmt.Errorf("project %d is placed on %s, which is not a listed deployment", project, name))
			continue
		}
		r.placements[project] = i
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("routing projects: %w", errors.Join(errs...))
	}
	return r, nil
}

// For returns the deployment of project.
func (r *Router) For(project int64) Deployment {
	return r.deps[r.index(project)]
}

// Index returns the position in Deployments of project's deployment.
func (r *Router) Index(project int64) int {
	return r.index(project)
}

func (r *Router) index(project int64) int {
	if i, ok := r.placements[project]; ok {
		return i
	}
	best, bestWeight := 0, uint64(0)
	for i, seed := range r.seeds {
		w := weight(seed, project)
		// Ties (vanishingly rare) go to the smaller name, so that the
		// order of the list never matters.
		if i == 0 || w > bestWeight || (w == bestWeight && r.deps[i].Name < r.deps[best].Name) {
			best, bestWeight = i, w
		}
	}
	return best
}

// weight is a project's random weight on the deployment whose name hashes
// to seed. splitmix64's finaliser, applied to the id and then to it mixed
// with the seed, spreads consecutive ids evenly and makes each
// deployment's weights independent of the others'.
func weight(seed uint64, project int64) uint64 {
	return mix(seed ^ mix(uint64(project)))
}

func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Deployments returns the deployments, in the order they were listed.
func (r *Router) Deployments() []Deployment {
	return slices.Clone(r.deps)
}

// Deployment returns the deployment called name.
func (r *Router) Deployment(name string) (Deployment, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Deployment{}, false
	}
	return r.deps[i], true
}

// Group splits projects by deployment name, each group in the order given;
// a deployment without projects has no entry.
func (r *Router) Group(projects []int64) map[string][]int64 {
	out := map[string][]int64{}
	for _, p := range projects {
		name := r.For(p).Name
		out[name] = append(out[name], p)
	}
	return out
}
