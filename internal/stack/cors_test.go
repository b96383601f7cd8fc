package stack

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWithCORS checks the emulation of API Gateway's CORS: preflights
// answered for allowed origins, methods and headers only, the API's answers
// marked for allowed origins, and nothing changed without origins.
func TestWithCORS(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // the API's own answer
	})
	page := "http://127.0.0.1:8080"
	tests := []struct {
		name        string
		origins     []string
		method      string
		header      map[string]string
		status      int
		allowOrigin string
	}{
		{"no CORS configured: the API as it is", nil, "OPTIONS",
			map[string]string{"Origin": page, "Access-Control-Request-Method": "POST"}, http.StatusTeapot, ""},
		{"preflight of an allowed origin", []string{page}, "OPTIONS",
			map[string]string{"Origin": page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type,x-request-id"}, http.StatusNoContent, page},
		{"preflight of any origin", []string{"*"}, "OPTIONS",
			map[string]string{"Origin": page, "Access-Control-Request-Method": "POST"}, http.StatusNoContent, "*"},
		{"preflight of another origin", []string{page}, "OPTIONS",
			map[string]string{"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"}, http.StatusNoContent, ""},
		{"preflight of a header not allowed", []string{page}, "OPTIONS",
			map[string]string{"Origin": page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-other"}, http.StatusNoContent, ""},
		{"preflight of a method not allowed", []string{page}, "OPTIONS",
			map[string]string{"Origin": page, "Access-Control-Request-Method": "DELETE"}, http.StatusNoContent, ""},
		{"a call from an allowed origin", []string{page}, "POST", map[string]string{"Origin": page}, http.StatusTeapot, page},
		{"a call from another origin", []string{page}, "POST", map[string]string{"Origin": "http://elsewhere"}, http.StatusTeapot, ""},
		{"a call without an origin", []string{page}, "POST", nil, http.StatusTeapot, ""},
		{"OPTIONS that is no preflight", []string{page}, "OPTIONS", map[string]string{"Origin": page}, http.StatusTeapot, page},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/v4/projects/1/product_analytics/request/load", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			withCORS(tt.origins, api).ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("Access-Control-Allow-Origin") != tt.allowOrigin {
				t.Errorf("%d, Access-Control-Allow-Origin %q; want %d, %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"), tt.status, tt.allowOrigin)
			}
		})
	}
}
