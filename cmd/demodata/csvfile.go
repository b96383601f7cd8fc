package main

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteCSV streams one project's events to w as CSV with a header row.
// ctx is checked every few thousand rows so an interrupt stops promptly.
func WriteCSV(ctx context.Context, w io.Writer, cfg ProjectConfig) (Stats, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(header()); err != nil {
		return Stats{}, err
	}
	rec := make([]string, len(columns))
	var cut []int
	if cfg.WholeSeconds {
		cut = tstampColumns()
	}
	n := 0
	stats, err := Generate(cfg, func(e *Event) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e.record(rec)
		for _, i := range cut {
			// Truncation: a time's text without its fraction.
			rec[i], _, _ = strings.Cut(rec[i], ".")
		}
		return cw.Write(rec)
	})
	if err != nil {
		return stats, err
	}
	cw.Flush()
	return stats, cw.Error()
}

// writeCSVFile writes a project's CSV to path through a temporary name, so
// an interrupted run never leaves a truncated file that looks complete. A
// path ending in .gz gets the CSV gzip-compressed (at the fastest level):
// the loader reads it as it is.
func writeCSVFile(ctx context.Context, path string, cfg ProjectConfig) (Stats, int64, error) {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	f, err := os.Create(tmp)
	if err != nil {
		return Stats{}, 0, err
	}
	var w io.Writer = f
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw, _ = gzip.NewWriterLevel(f, gzip.BestSpeed) // a valid level: no error
		w = zw
	}
	stats, err := WriteCSV(ctx, w, cfg)
	if zw != nil {
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return stats, 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stats, 0, err
	}
	return stats, fi.Size(), nil
}
