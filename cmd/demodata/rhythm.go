package main

import (
	"math/rand/v2"
	"time"
)

// hourWeights is relative traffic per local hour of day: quiet at night,
// a morning ramp, a working-hours plateau and an evening tail.
var hourWeights = [24]float64{
	0.10, 0.07, 0.05, 0.05, 0.05, 0.08, // 00-05
	0.18, 0.35, 0.65, 0.90, 1.00, 1.00, // 06-11
	0.92, 0.97, 1.00, 0.97, 0.90, 0.75, // 12-17
	0.55, 0.45, 0.40, 0.35, 0.25, 0.15, // 18-23
}

// weekdayWeights makes weekends quieter, as for work-related sites.
var weekdayWeights = [7]float64{
	time.Sunday: 0.40, time.Monday: 1.00, time.Tuesday: 1.00, time.Wednesday: 0.98,
	time.Thursday: 0.95, time.Friday: 0.85, time.Saturday: 0.45,
}

// rhythm is a site's traffic shape over its window.
type rhythm struct {
	start, end time.Time
	// utcOffset shifts the audience's local clock, so sites for different
	// regions peak at different UTC hours.
	utcOffset time.Duration
	// growth is the traffic increase from the window's start to its end,
	// so the over-time charts are not flat.
	growth float64
}

// weight is the relative traffic at t, at most 1.
func (h rhythm) weight(t time.Time) float64 {
	local := t.Add(h.utcOffset)
	w := hourWeights[local.Hour()] * weekdayWeights[local.Weekday()]
	if span := h.end.Sub(h.start); span > 0 && h.growth > 0 {
		frac := float64(t.Sub(h.start)) / float64(span)
		w *= (1 + h.growth*frac) / (1 + h.growth)
	}
	return w
}

// sampleTime draws a time in [from, to) with density proportional to weight,
// by rejection: the weights are bounded by 1 and average well above 0.1, so
// this takes a handful of draws.
func (h rhythm) sampleTime(r *rand.Rand, from, to time.Time) time.Time {
	span := to.Sub(from)
	for {
		t := from.Add(time.Duration(r.Int64N(int64(span))))
		if r.Float64() < h.weight(t) {
			return t
		}
	}
}

// accept reports whether a visit planned for t happens, thinning visits at
// quiet hours so returning users follow the same rhythm.
func (h rhythm) accept(r *rand.Rand, t time.Time) bool {
	return r.Float64() < h.weight(t)
}
