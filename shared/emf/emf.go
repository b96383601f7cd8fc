// Package emf writes and reads CloudWatch's embedded metric format: metrics
// carried in a structured log line, which CloudWatch Logs turns into
// CloudWatch metrics without the code that logs them making any call.
//
// The format's specification:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package emf

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// The specification's limits.
const (
	// MaxMetrics is the most metric definitions one directive may hold.
	MaxMetrics = 100
	// MaxDimensions is the most dimension keys one dimension set may hold.
	MaxDimensions = 30
	// MaxValues is the most values one metric may carry in one line.
	MaxValues = 100
	// MaxNameLength bounds a namespace, a metric name and a dimension key.
	MaxNameLength = 255
	// MaxDimensionValueLength bounds a dimension's value (CloudWatch's
	// limit on a dimension value).
	MaxDimensionValueLength = 1024
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units this project uses; Units lists every unit the format accepts.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	None         Unit = "None"
)

// Units are the values the specification allows for a metric's Unit.
func Units() []Unit {
	return []Unit{
		"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
		"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
		"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
		"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
		"Count/Second", "None",
	}
}

// Metric is one metric's value in a line.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Directive is a group of metrics that share their dimension sets. Each
// dimension set makes each metric one CloudWatch metric: a metric with the
// sets [Endpoint] and [] is published per endpoint and once for all.
type Directive struct {
	Dimensions [][]string
	Metrics    []Metric
}

// Line is the metrics of one log line.
type Line struct {
	Namespace string
	// Time is the metrics' timestamp.
	Time time.Time
	// Dimensions are the values of the dimension keys the directives name.
	Dimensions map[string]string
	Directives []Directive
}

// ErrInvalid is wrapped by every error about a line that breaks the
// specification.
var ErrInvalid = errors.New("not a valid embedded metric format line")

// Attrs returns the line as attributes of a JSON log line (slog's
// JSONHandler): "_aws", then one member per dimension and per metric. It
// fails when the line would break the specification, which CloudWatch
// would answer by dropping its metrics.
func (l Line) Attrs() ([]slog.Attr, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	meta := metadata{Timestamp: l.Time.UnixMilli(), CloudWatchMetrics: make([]directive, 0, len(l.Directives))}
	var metrics []Metric
	for _, d := range l.Directives {
		out := directive{Namespace: l.Namespace, Dimensions: d.Dimensions, Metrics: make([]definition, 0, len(d.Metrics))}
		for _, m := range d.Metrics {
			out.Metrics = append(out.Metrics, definition{Name: m.Name, Unit: m.Unit})
			metrics = append(metrics, m)
		}
		meta.CloudWatchMetrics = append(meta.CloudWatchMetrics, out)
	}
	attrs := make([]slog.Attr, 0, 1+len(l.Dimensions)+len(metrics))
	attrs = append(attrs, slog.Any("_aws", meta))
	for _, k := range sortedKeys(l.Dimensions) {
		attrs = append(attrs, slog.String(k, l.Dimensions[k]))
	}
	sort.Slice(metrics, func(i, j int) bool { return metrics[i].Name < metrics[j].Name })
	for _, m := range metrics {
		attrs = append(attrs, slog.Float64(m.Name, m.Value))
	}
	return attrs, nil
}

// The JSON of the "_aws" member, in the specification's words.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type definition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit,omitempty"`
}

// check refuses what the specification or CloudWatch would refuse, and a
// metric named twice (a line holds one value per name).
func (l Line) check() error {
	if err := CheckNamespace(l.Namespace); err != nil {
		return err
	}
	if l.Time.IsZero() {
		return fmt.Errorf("%w: the line has no time", ErrInvalid)
	}
	if len(l.Directives) == 0 {
		return fmt.Errorf("%w: the line has no directive", ErrInvalid)
	}
	for k, v := range l.Dimensions {
		if err := checkName("dimension", k); err != nil {
			return err
		}
		if err := checkDimensionValue(k, v); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, d := range l.Directives {
		if len(d.Dimensions) == 0 {
			return fmt.Errorf("%w: directive %d has no dimension set (use [[]] for none)", ErrInvalid, i)
		}
		for _, set := range d.Dimensions {
			if len(set) > MaxDimensions {
				return fmt.Errorf("%w: directive %d: a dimension set of %d keys, more than %d", ErrInvalid, i, len(set), MaxDimensions)
			}
			for _, k := range set {
				if _, ok := l.Dimensions[k]; !ok {
					return fmt.Errorf("%w: directive %d names dimension %q, which has no value", ErrInvalid, i, k)
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
			return fmt.Errorf("%w: directive %d has %d metrics, want 1 to %d", ErrInvalid, i, len(d.Metrics), MaxMetrics)
		}
		for _, m := range d.Metrics {
			if err := checkName("metric", m.Name); err != nil {
				return err
			}
			if seen[m.Name] {
				return fmt.Errorf("%w: metric %q is defined twice", ErrInvalid, m.Name)
			}
			if _, dim := l.Dimensions[m.Name]; dim {
				return fmt.Errorf("%w: %q is both a metric and a dimension", ErrInvalid, m.Name)
			}
			seen[m.Name] = true
			if m.Unit != "" && !slices.Contains(Units(), m.Unit) {
				return fmt.Errorf("%w: metric %q: %q is not a CloudWatch unit", ErrInvalid, m.Name, m.Unit)
			}
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				return fmt.Errorf("%w: metric %q: %v is not a number JSON can carry", ErrInvalid, m.Name, m.Value)
			}
		}
	}
	return nil
}

// CheckNamespace returns an error wrapping ErrInvalid unless ns is a
// namespace CloudWatch takes for custom metrics.
func CheckNamespace(ns string) error {
	if ns == "" || len(ns) > MaxNameLength {
		return fmt.Errorf("%w: namespace %q is not 1 to %d characters", ErrInvalid, ns, MaxNameLength)
	}
	// CloudWatch's namespace characters; AWS/ is AWS's own.
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/#:", c) >= 0) {
			return fmt.Errorf("%w: namespace %q holds %q, outside [A-Za-z0-9._-/#:]", ErrInvalid, ns, c)
		}
	}
	if strings.HasPrefix(ns, "AWS/") {
		return fmt.Errorf("%w: namespace %q: AWS/ is reserved to AWS", ErrInvalid, ns)
	}
	return nil
}

func checkName(what, name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w: %s name %q is not 1 to %d characters", ErrInvalid, what, name, MaxNameLength)
	}
	if name == "_aws" {
		return fmt.Errorf("%w: %s name _aws is the format's own member", ErrInvalid, what)
	}
	return nil
}

func checkDimensionValue(key, v string) error {
	if strings.TrimSpace(v) == "" || len(v) > MaxDimensionValueLength {
		return fmt.Errorf("%w: dimension %s: value %q is not 1 to %d characters, not all blank", ErrInvalid, key, v, MaxDimensionValueLength)
	}
	// Stricter than CloudWatch, which takes any text: every value of
	// ours is a name, and anything else in one is a mistake.
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] >= 0x7f {
			return fmt.Errorf("%w: dimension %s: value %q is not printable ASCII", ErrInvalid, key, v)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
