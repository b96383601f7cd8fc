package emf_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/emf"
)

// specExample is the valid document of the specification's page.
const specExample = `{
  "_aws": {
    "Timestamp": 1574109732004,
    "CloudWatchMetrics": [
      {
        "Namespace": "lambda-function-metrics",
        "Dimensions": [["functionVersion"]],
        "Metrics": [
          {
            "Name": "time",
            "Unit": "Milliseconds",
            "StorageResolution": 60
          }
        ]
      }
    ]
  },
  "functionVersion": "$LATEST",
  "time": 100,
  "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"
}`

func TestExtractTheSpecificationsExample(t *testing.T) {
	got, err := emf.Extract([]byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	want := []emf.Datum{{
		Namespace: "lambda-function-metrics", Name: "time", Unit: emf.Milliseconds,
		Dimensions: map[string]string{"functionVersion": "$LATEST"}, Values: []float64{100},
		Time: time.UnixMilli(1574109732004), StorageResolution: 60,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestExtractRefusesWhatTheSpecificationForbids changes the example one
// rule at a time.
func TestExtractRefusesWhatTheSpecificationForbids(t *testing.T) {
	dims := func(n int) string {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf(`"d%d"`, i)
		}
		return "[" + strings.Join(keys, ",") + "]"
	}
	dimValues := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"d%d":"v"`, i)
		}
		return b.String()
	}
	metrics := func(n int) (defs, values string) {
		var d, v []string
		for i := range n {
			d = append(d, fmt.Sprintf(`{"Name":"m%d","Unit":"Count"}`, i))
			v = append(v, fmt.Sprintf(`"m%d":1`, i))
		}
		return "[" + strings.Join(d, ",") + "]", strings.Join(v, ",")
	}
	defs100, values100 := metrics(100)
	defs101, values101 := metrics(101)
	hundred := strings.TrimSuffix(strings.Repeat("1,", 100), ",")
	doc := func(directive, members string) string {
		return `{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[` + directive + `]}` + members + `}`
	}
	ok := `{"Namespace":"ns","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds"}]}`
	members := `,"functionVersion":"$LATEST","time":100`
	tests := []struct {
		name, line, wantErr string // wantErr "" for a valid line
	}{
		{"valid", doc(ok, members), ""},
		{"no dimensions at all, as [[]]", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, `,"time":1`), ""},
		{"30 dimensions", doc(`{"Namespace":"ns","Dimensions":[`+dims(30)+`],"Metrics":[{"Name":"time"}]}`, `,"time":1`+dimValues(30)), ""},
		{"100 metrics", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":`+defs100+`}`, ","+values100), ""},
		{"100 values", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, `,"time":[`+hundred+`]`), ""},
		{"high resolution", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time","StorageResolution":1}]}`, `,"time":1`), ""},

		{"not JSON", `_aws`, "not a JSON object"},
		{"text after the object", doc(ok, members) + ` trailing`, "after the JSON object"},
		{"a JSON array", `[` + doc(ok, members) + `]`, "not a JSON object"},
		{"no _aws", `{"time":100}`, "_aws: missing"},
		{"_aws not an object", `{"_aws":[]}`, "_aws"},
		{"no Timestamp", `{"_aws":{"CloudWatchMetrics":[` + ok + `]}` + members + `}`, "Timestamp: missing"},
		{"Timestamp a string", `{"_aws":{"Timestamp":"1574109732004","CloudWatchMetrics":[` + ok + `]}` + members + `}`, "Timestamp"},
		{"Timestamp not whole", `{"_aws":{"Timestamp":1574109732004.5,"CloudWatchMetrics":[` + ok + `]}` + members + `}`, "Timestamp"},
		{"no CloudWatchMetrics", `{"_aws":{"Timestamp":1574109732004}` + members + `}`, "CloudWatchMetrics: missing"},
		{"an extra member in _aws", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[],"LogGroupName":"x"}}`, `member "LogGroupName"`},
		{"no Namespace", doc(`{"Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time"}]}`, members), "Namespace: missing"},
		{"empty Namespace", doc(`{"Namespace":"","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time"}]}`, members), "namespace"},
		{"Namespace past 255", doc(`{"Namespace":"`+strings.Repeat("n", 256)+`","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, members), "namespace"},
		{"AWS/ namespace", doc(`{"Namespace":"AWS/Lambda","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, members), "reserved"},
		{"no Dimensions", doc(`{"Namespace":"ns","Metrics":[{"Name":"time"}]}`, members), "Dimensions: missing"},
		{"no dimension set", doc(`{"Namespace":"ns","Dimensions":[],"Metrics":[{"Name":"time"}]}`, members), "no dimension set"},
		{"a dimension set not an array", doc(`{"Namespace":"ns","Dimensions":["functionVersion"],"Metrics":[{"Name":"time"}]}`, members), "Dimensions"},
		{"31 dimensions", doc(`{"Namespace":"ns","Dimensions":[`+dims(31)+`],"Metrics":[{"Name":"time"}]}`, `,"time":1`+dimValues(31)), "more than 30"},
		{"a dimension without its member", doc(`{"Namespace":"ns","Dimensions":[["service"]],"Metrics":[{"Name":"time"}]}`, members), `dimension "service"`},
		{"a dimension not a string", doc(ok, `,"functionVersion":7,"time":100`), `dimension "functionVersion"`},
		{"a nested dimension target", doc(`{"Namespace":"ns","Dimensions":[["a.b"]],"Metrics":[{"Name":"time"}]}`, `,"a":{"b":"x"},"time":1`), `dimension "a.b"`},
		{"no Metrics", doc(`{"Namespace":"ns","Dimensions":[[]]}`, members), "Metrics: missing"},
		{"101 metrics", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":`+defs101+`}`, ","+values101), "more than 100"},
		{"a metric without Name", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Unit":"Count"}]}`, members), "Name: missing"},
		{"a metric without its member", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"latency"}]}`, members), `metric "latency"`},
		{"a metric not a number", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, `,"time":"100"`), `metric "time"`},
		{"101 values", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, `,"time":[`+hundred+`,1]`), "101 values"},
		{"values not numbers", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}]}`, `,"time":[1,"2"]`), `metric "time"`},
		{"an unknown unit", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time","Unit":"ms"}]}`, members), "not a CloudWatch unit"},
		{"a resolution of 30", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time","StorageResolution":30}]}`, members), "StorageResolution"},
		{"an extra member in a directive", doc(`{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"time"}],"Period":60}`, members), `member "Period"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := emf.Extract([]byte(tt.line))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want a valid line", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("got a valid line, want an error about %q", tt.wantErr)
			case tt.wantErr != "" && (!errors.Is(err, emf.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want ErrInvalid about %q", err, tt.wantErr)
			}
		})
	}
}

// logLine writes l's attributes the way the functions do: one JSON line of
// slog's JSONHandler, beside the line's other fields.
func logLine(t *testing.T, l emf.Line) ([]byte, error) {
	t.Helper()
	attrs, err := l.Attrs()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "request",
		append([]slog.Attr{slog.String("request_id", "r-1"), slog.Int("status", 200)}, attrs...)...)
	return buf.Bytes(), nil
}

func TestWrittenLinesReadBack(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	l := emf.Line{
		Namespace:  "ProductAnalytics/prod",
		Time:       at,
		Dimensions: map[string]string{"Endpoint": "load", "StatusClass": "2xx"},
		Directives: []emf.Directive{
			{Dimensions: [][]string{{"Endpoint", "StatusClass"}, {}}, Metrics: []emf.Metric{{Name: "Requests", Unit: emf.Count, Value: 1}}},
			{Dimensions: [][]string{{"Endpoint"}}, Metrics: []emf.Metric{{Name: "Latency", Unit: emf.Milliseconds, Value: 12.5}}},
		},
	}
	line, err := logLine(t, l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := emf.Extract(line)
	if err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	want := []emf.Datum{
		{Namespace: "ProductAnalytics/prod", Name: "Requests", Unit: emf.Count, Dimensions: map[string]string{"Endpoint": "load", "StatusClass": "2xx"}, Values: []float64{1}, Time: at, StorageResolution: 60},
		{Namespace: "ProductAnalytics/prod", Name: "Requests", Unit: emf.Count, Dimensions: map[string]string{}, Values: []float64{1}, Time: at, StorageResolution: 60},
		{Namespace: "ProductAnalytics/prod", Name: "Latency", Unit: emf.Milliseconds, Dimensions: map[string]string{"Endpoint": "load"}, Values: []float64{12.5}, Time: at, StorageResolution: 60},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v\nline %s", got, want, line)
	}
}

func TestWriterRefusesWhatCloudWatchWouldDrop(t *testing.T) {
	at := time.UnixMilli(1700000000000)
	one := []emf.Metric{{Name: "Requests", Unit: emf.Count, Value: 1}}
	var many []emf.Metric
	for i := range 101 {
		many = append(many, emf.Metric{Name: fmt.Sprintf("m%d", i), Unit: emf.Count, Value: 1})
	}
	manyDims := map[string]string{}
	var set []string
	for i := range 31 {
		k := fmt.Sprintf("d%d", i)
		manyDims[k], set = "v", append(set, k)
	}
	tests := []struct {
		name string
		line emf.Line
	}{
		{"no namespace", emf.Line{Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}}}},
		{"an AWS namespace", emf.Line{Namespace: "AWS/Lambda", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}}}},
		{"a namespace with a space", emf.Line{Namespace: "Product Analytics", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}}}},
		{"no time", emf.Line{Namespace: "ns", Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}}}},
		{"no directive", emf.Line{Namespace: "ns", Time: at}},
		{"no dimension set", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Metrics: one}}}},
		{"a dimension without a value", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{"Endpoint"}}, Metrics: one}}}},
		{"a blank dimension value", emf.Line{Namespace: "ns", Time: at, Dimensions: map[string]string{"Endpoint": " "}, Directives: []emf.Directive{{Dimensions: [][]string{{"Endpoint"}}, Metrics: one}}}},
		{"31 dimensions", emf.Line{Namespace: "ns", Time: at, Dimensions: manyDims, Directives: []emf.Directive{{Dimensions: [][]string{set}, Metrics: one}}}},
		{"101 metrics", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: many}}}},
		{"a metric twice", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}, {Dimensions: [][]string{{}}, Metrics: one}}}},
		{"a metric named as a dimension", emf.Line{Namespace: "ns", Time: at, Dimensions: map[string]string{"Requests": "x"}, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: one}}}},
		{"an unknown unit", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: []emf.Metric{{Name: "x", Unit: "ms", Value: 1}}}}}},
		{"NaN", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: []emf.Metric{{Name: "x", Value: math.NaN()}}}}}},
		{"a metric named _aws", emf.Line{Namespace: "ns", Time: at, Directives: []emf.Directive{{Dimensions: [][]string{{}}, Metrics: []emf.Metric{{Name: "_aws", Value: 1}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs, err := tt.line.Attrs()
			if !errors.Is(err, emf.ErrInvalid) {
				t.Fatalf("got %v, %v; want ErrInvalid", attrs, err)
			}
		})
	}
}
