package funnels_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"productanalytics/shared/funnels"
)

// A project's definitions in a folder, read through a cache as the API
// reads them.
func Example() {
	root, _ := os.MkdirTemp("", "funnels-example-")
	defer os.RemoveAll(root)
	os.MkdirAll(filepath.Join(root, "1"), 0o700)
	os.WriteFile(filepath.Join(root, "1", "Completed Purchase.yml"), []byte(`
seconds_to_convert: 3600
steps:
  - name: cart
    action: pageview
    target: /cart
  - name: paid
    action: pageview
    target: /checkout/done
`), 0o600)
	os.WriteFile(filepath.Join(root, "1", "broken.yml"), []byte("seconds_to_convert: 60\nsteps:\n  - {name: a, action: click, target: /}\n"), 0o600)

	cache := funnels.NewCache(funnels.Dir{Root: root}, 30*time.Second, 5*time.Second, 1000)
	set, err := cache.Set(context.Background(), 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range set.Funnels {
		fmt.Println(f.Name, f.SecondsToConvert, f.Conditions())
	}
	for _, inv := range set.Invalid {
		fmt.Println("refused:", inv.File, inv.Reason)
	}
	// Output:
	// completed_purchase 3600 [page_urlpath = '/cart' page_urlpath = '/checkout/done']
	// refused: broken.yml step 1's action must be pageview
}
