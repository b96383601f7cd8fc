package cube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"productanalytics/shared/cube"
	"productanalytics/shared/deploy"
)

// staticKey serves one Cube API key.
type staticKey string

func (k staticKey) Get(context.Context) (string, error)             { return string(k), nil }
func (k staticKey) Refresh(context.Context, string) (string, error) { return string(k), nil }

func ExampleNewRouted() {
	// Two Cubes, each answering with its own name.
	var deps []deploy.Deployment
	for _, name := range []string{"cube-1", "cube-2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"served_by":%q}`, name)
		}))
		defer srv.Close()
		deps = append(deps, deploy.Deployment{Name: name, URL: srv.URL, KeySecretID: "cube-key-" + name})
	}
	router, err := deploy.NewRouter(deps, map[int64]string{4: "cube-1"})
	if err != nil {
		panic(err)
	}
	routed, err := cube.NewRouted(router, func(d deploy.Deployment) (*cube.Client, error) {
		// In the API each deployment's key is read from d.KeySecretID.
		return cube.NewClient(staticKey("key-of-"+d.Name), cube.Options{BaseURL: d.URL}), nil
	})
	if err != nil {
		panic(err)
	}
	for _, project := range []int64{1, 4, 5} {
		res, err := routed.Do(context.Background(), cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(`{"measures":["TrackedEvents.count"]}`)})
		if err != nil {
			panic(err)
		}
		fmt.Printf("project %d: %s %s\n", project, res.Deployment, res.Body)
	}
	// Output:
	// project 1: cube-2 {"served_by":"cube-2"}
	// project 4: cube-1 {"served_by":"cube-1"}
	// project 5: cube-1 {"served_by":"cube-1"}
}
