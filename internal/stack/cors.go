package stack

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CORSConfig is the HTTP API's CORS configuration as template.yaml sets it
// when CorsAllowOrigins is given (the template tests hold the two equal).
type CORSConfig struct {
	AllowMethods, AllowHeaders, ExposeHeaders []string
	MaxAge                                    int
}

// CORS is the configuration template.yaml gives the HTTP API.
var CORS = CORSConfig{
	AllowMethods:  []string{http.MethodGet, http.MethodPost},
	AllowHeaders:  []string{"authorization", "content-type", "x-request-id"},
	ExposeHeaders: []string{"x-request-id"},
	MaxAge:        3600,
}

// withCORS answers browsers as API Gateway does for an HTTP API with a CORS
// configuration, so that a page hosted elsewhere (the exported dashboards
// page) can be tried against the local API: it answers preflight requests
// itself, and adds the CORS headers to the API's answers to an allowed
// origin. Without origins it changes nothing.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	allowed := func(origin string) bool {
		return origin != "" && (slices.Contains(origins, "*") || slices.Contains(origins, origin))
	}
	allowOrigin := func(origin string) string {
		if slices.Contains(origins, "*") {
			return "*"
		}
		return origin
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed(origin) && slices.Contains(CORS.AllowMethods, r.Header.Get("Access-Control-Request-Method")) && headersAllowed(r.Header.Get("Access-Control-Request-Headers")) {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", allowOrigin(origin))
				h.Set("Access-Control-Allow-Methods", strings.Join(CORS.AllowMethods, ","))
				h.Set("Access-Control-Allow-Headers", strings.Join(CORS.AllowHeaders, ","))
				h.Set("Access-Control-Max-Age", strconv.Itoa(CORS.MaxAge))
			}
			// Refused or not, no CORS headers tell the browser no.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed(origin) {
			w.Header().Set("Access-Control-Allow-Origin", allowOrigin(origin))
			w.Header().Set("Access-Control-Expose-Headers", strings.Join(CORS.ExposeHeaders, ","))
		}
		next.ServeHTTP(w, r)
	})
}

// headersAllowed reports whether every header of a preflight's
// Access-Control-Request-Headers is allowed.
func headersAllowed(list string) bool {
	for h := range strings.SplitSeq(list, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h != "" && !slices.Contains(CORS.AllowHeaders, h) {
			return false
		}
	}
	return true
}
