package main

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// newUUID returns a version-4-shaped UUID drawn from r, so ids are unique in
// practice yet reproducible for a seed (crypto/rand would break determinism).
func newUUID(r *rand.Rand) string {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// weighted picks items with probability proportional to their weight.
type weighted[T any] struct {
	items []T
	cum   []float64
}

// newWeighted builds a picker; weights must be positive and match items.
func newWeighted[T any](items []T, weights []float64) weighted[T] {
	if len(items) != len(weights) || len(items) == 0 {
		panic("newWeighted: items and weights must be non-empty and of equal length")
	}
	cum := make([]float64, len(weights))
	total := 0.0
	for i, w := range weights {
		total += w
		cum[i] = total
	}
	return weighted[T]{items: items, cum: cum}
}

// pick draws one item.
func (w weighted[T]) pick(r *rand.Rand) T {
	return w.items[w.index(r)]
}

// index draws one item's index.
func (w weighted[T]) index(r *rand.Rand) int {
	x := r.Float64() * w.cum[len(w.cum)-1]
	return sort.SearchFloat64s(w.cum, x)
}

// zipfWeights gives rank i the weight 1/(i+1)^s: a few hot pages and a long
// tail, the shape real page popularity has.
func zipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), s)
	}
	return w
}

// chance reports true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// oneOf returns a uniformly chosen element.
func oneOf[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// logNormal draws a value whose logarithm is normal: durations and gaps
// between visits are skewed with a long right tail.
func logNormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

// geometric draws the number of failures before a success with the given
// mean, for "how many more pages/sessions" counts.
func geometric(r *rand.Rand, mean float64) int {
	p := 1 / (1 + mean)
	n := 0
	for !chance(r, p) {
		n++
	}
	return n
}

// jsonObject renders key/value pairs as a JSON object in the given order;
// a Go map would be sorted by key by encoding/json, but fixed order reads
// more naturally and stays deterministic.
func jsonObject(kv ...any) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			sb.WriteByte(',')
		}
		k, err := json.Marshal(kv[i].(string))
		if err != nil {
			panic(err)
		}
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			panic(err) // callers pass only basic-typed values
		}
		sb.Write(k)
		sb.WriteByte(':')
		sb.Write(v)
	}
	sb.WriteByte('}')
	return sb.String()
}
