package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DataVersion is a digest of what decides generated data: the generator's
// sources, the DuckDB loader and the tables' DDL, under root. Data kept
// for benchmarks is named after it, so that a change to any of them makes
// new data rather than reading files an older loader wrote.
func DataVersion(root string) (string, error) {
	var files []string
	for _, pattern := range []string{"cmd/demodata/*.go", "cube/scripts/load-events.js", "cube/schema/*"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return "", err
		}
		for _, f := range m {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, f)
			}
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading %s for the data's version: %w", f, err)
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
