package emf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Datum is one value of one CloudWatch metric, as CloudWatch takes it from a
// line: one per metric definition and dimension set.
type Datum struct {
	Namespace  string
	Name       string
	Unit       Unit
	Dimensions map[string]string
	Values     []float64
	Time       time.Time
	// StorageResolution is 1 (high resolution) or 60 (standard).
	StorageResolution int
}

// Extract reads a log line as CloudWatch Logs reads an embedded metric
// format document, checking it against the specification, and returns the
// metric values CloudWatch would publish. A line that is not a valid
// document is an error wrapping ErrInvalid that says why.
func Extract(line []byte) ([]Datum, error) {
	var root map[string]json.RawMessage
	// One JSON object and nothing around it: the specification's root node.
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(line)))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil || root == nil {
		return nil, fmt.Errorf("%w: the line is not a JSON object: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	var meta map[string]json.RawMessage
	if err := strictObject(root["_aws"], &meta); err != nil {
		return nil, fmt.Errorf("%w: _aws: %v", ErrInvalid, err)
	}
	if err := only(meta, "Timestamp", "CloudWatchMetrics"); err != nil {
		return nil, fmt.Errorf("%w: _aws: %v", ErrInvalid, err)
	}
	ts, err := timestamp(meta["Timestamp"])
	if err != nil {
		return nil, fmt.Errorf("%w: _aws.Timestamp: %v", ErrInvalid, err)
	}
	var directives []json.RawMessage
	if err := strictArray(meta["CloudWatchMetrics"], &directives); err != nil {
		return nil, fmt.Errorf("%w: _aws.CloudWatchMetrics: %v", ErrInvalid, err)
	}
	var out []Datum
	for i, raw := range directives {
		d, err := readDirective(root, raw, ts)
		if err != nil {
			return nil, fmt.Errorf("%w: _aws.CloudWatchMetrics[%d]: %v", ErrInvalid, i, err)
		}
		out = append(out, d...)
	}
	return out, nil
}

func readDirective(root map[string]json.RawMessage, raw json.RawMessage, ts time.Time) ([]Datum, error) {
	var d map[string]json.RawMessage
	if err := strictObject(raw, &d); err != nil {
		return nil, err
	}
	if err := only(d, "Namespace", "Dimensions", "Metrics"); err != nil {
		return nil, err
	}
	var ns string
	if err := strictString(d["Namespace"], &ns); err != nil {
		return nil, fmt.Errorf("member Namespace: %v", err)
	}
	if err := CheckNamespace(ns); err != nil {
		return nil, err
	}
	var sets [][]string
	if err := strictArray(d["Dimensions"], &sets); err != nil {
		return nil, fmt.Errorf("member Dimensions: %v", err)
	}
	// The published schema asks for at least one set; [[]] means none.
	if len(sets) == 0 {
		return nil, fmt.Errorf("member Dimensions: no dimension set")
	}
	dims := map[string]string{}
	for _, set := range sets {
		if set == nil {
			return nil, fmt.Errorf("member Dimensions: a dimension set is not an array")
		}
		if len(set) > MaxDimensions {
			return nil, fmt.Errorf("member Dimensions: a set of %d keys, more than %d", len(set), MaxDimensions)
		}
		for _, k := range set {
			if err := checkName("dimension", k); err != nil {
				return nil, err
			}
			var v string
			if err := strictString(root[k], &v); err != nil {
				return nil, fmt.Errorf("dimension %q: its target member: %v", k, err)
			}
			if err := checkDimensionValue(k, v); err != nil {
				return nil, err
			}
			dims[k] = v
		}
	}
	var defs []json.RawMessage
	if err := strictArray(d["Metrics"], &defs); err != nil {
		return nil, fmt.Errorf("member Metrics: %v", err)
	}
	if len(defs) > MaxMetrics {
		return nil, fmt.Errorf("member Metrics: %d definitions, more than %d", len(defs), MaxMetrics)
	}
	var out []Datum
	for _, raw := range defs {
		var def map[string]json.RawMessage
		if err := strictObject(raw, &def); err != nil {
			return nil, fmt.Errorf("member Metrics: %v", err)
		}
		if err := only(def, "Name", "Unit", "StorageResolution"); err != nil {
			return nil, fmt.Errorf("member Metrics: %v", err)
		}
		var name string
		if err := strictString(def["Name"], &name); err != nil {
			return nil, fmt.Errorf("member Metrics: Name: %v", err)
		}
		if err := checkName("metric", name); err != nil {
			return nil, err
		}
		unit := None
		if u, ok := def["Unit"]; ok {
			var s string
			if err := strictString(u, &s); err != nil || !slices.Contains(Units(), Unit(s)) {
				return nil, fmt.Errorf("metric %q: Unit %s is not a CloudWatch unit", name, u)
			}
			unit = Unit(s)
		}
		resolution := 60
		if r, ok := def["StorageResolution"]; ok {
			var err error
			if resolution, err = strconv.Atoi(string(r)); err != nil || resolution != 1 && resolution != 60 {
				return nil, fmt.Errorf("metric %q: StorageResolution %s is neither 1 nor 60", name, r)
			}
		}
		values, err := metricValues(root[name])
		if err != nil {
			return nil, fmt.Errorf("metric %q: its target member: %v", name, err)
		}
		for _, set := range sets {
			dd := make(map[string]string, len(set))
			for _, k := range set {
				dd[k] = dims[k]
			}
			out = append(out, Datum{Namespace: ns, Name: name, Unit: unit, Dimensions: dd, Values: values, Time: ts, StorageResolution: resolution})
		}
	}
	return out, nil
}

// timestamp reads milliseconds since the Unix epoch, a whole number.
func timestamp(raw json.RawMessage) (time.Time, error) {
	if raw == nil {
		return time.Time{}, fmt.Errorf("missing")
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, fmt.Errorf("%s is not a positive whole number of milliseconds", raw)
	}
	return time.UnixMilli(ms), nil
}

// metricValues reads a metric's target: a number or an array of at most
// MaxValues numbers.
func metricValues(raw json.RawMessage) ([]float64, error) {
	if raw == nil {
		return nil, fmt.Errorf("missing")
	}
	var items []json.RawMessage
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%s is not an array of numbers", truncate(raw))
		}
		if len(items) == 0 || len(items) > MaxValues {
			return nil, fmt.Errorf("%d values, want 1 to %d", len(items), MaxValues)
		}
	} else {
		items = []json.RawMessage{raw}
	}
	out := make([]float64, len(items))
	for i, item := range items {
		// A JSON number only: encoding/json would also read "2" as one.
		if len(item) == 0 || item[0] != '-' && (item[0] < '0' || item[0] > '9') {
			return nil, fmt.Errorf("%s is not a number", truncate(item))
		}
		f, err := strconv.ParseFloat(string(item), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", truncate(item))
		}
		out[i] = f
	}
	return out, nil
}

// strictObject decodes a member that must be a JSON object.
func strictObject(raw json.RawMessage, v *map[string]json.RawMessage) error {
	if raw == nil {
		return fmt.Errorf("missing")
	}
	if err := json.Unmarshal(raw, v); err != nil || *v == nil {
		return fmt.Errorf("%s is not an object", truncate(raw))
	}
	return nil
}

// strictArray decodes a member that must be a JSON array of the given kind.
func strictArray[T any](raw json.RawMessage, v *[]T) error {
	if raw == nil {
		return fmt.Errorf("missing")
	}
	if err := json.Unmarshal(raw, v); err != nil || *v == nil {
		return fmt.Errorf("%s is not an array of the right kind", truncate(raw))
	}
	return nil
}

// strictString decodes a member that must be a JSON string.
func strictString(raw json.RawMessage, v *string) error {
	if raw == nil {
		return fmt.Errorf("missing")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s is not a string", truncate(raw))
	}
	return nil
}

// only refuses members the specification does not define: its objects
// "MUST NOT contain any additional members".
func only(obj map[string]json.RawMessage, names ...string) error {
	for k := range obj {
		if !slices.Contains(names, k) {
			return fmt.Errorf("member %q is not the format's", k)
		}
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
