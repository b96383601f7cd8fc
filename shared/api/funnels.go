package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"productanalytics/shared/funnels"
	"productanalytics/shared/request"
)

// ErrFunnelsUnavailable: the project's funnel definitions cannot be read,
// and were never read before.
var ErrFunnelsUnavailable = errors.New("the project's funnel definitions cannot be read")

// endpointFunnels names the listing in the request's log line.
const endpointFunnels = "funnels"

// funnelsRoute matches /projects/{id}/product_analytics/funnels, with or
// without the /api/v4 prefix.
func funnelsRoute(path string) (id string, ok bool) {
	path = strings.TrimPrefix(path, "/api/v4")
	rest, ok := strings.CutPrefix(path, "/projects/")
	if !ok {
		return "", false
	}
	id, rest, ok = strings.Cut(rest, "/")
	if !ok || strings.TrimSuffix(rest, "/") != "product_analytics/funnels" {
		return "", false
	}
	return id, true
}

// checkFunnels refuses a funnel member the project does not have, with the
// words Cube uses for any unknown member. Queries of the shared cubes cost
// no read of the definitions.
func (h *Handler) checkFunnels(ctx context.Context, projectID int64, call request.Call) error {
	if h.opts.Funnels == nil || !call.UsesFunnels() {
		return nil
	}
	set, err := h.opts.Funnels.Set(ctx, projectID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFunnelsUnavailable, err)
	}
	return call.CheckFunnelMembers(set.Has)
}

// listedFunnel is one funnel as GitLab lists it: its name, its SQL and its
// steps as their SQL conditions.
type listedFunnel struct {
	Name  string   `json:"name"`
	SQL   string   `json:"sql"`
	Steps []string `json:"steps"`
}

// listFunnels answers GET /projects/:id/product_analytics/funnels with
// GitLab's shape, [{"name","sql","steps"}], to the callers who may read
// the project's analytics.
func (h *Handler) listFunnels(w http.ResponseWriter, r *http.Request, idText string, o *outcome) (answer, error) {
	o.endpoint = endpointFunnels
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return answer{}, ErrMethod
	}
	projectID, err := h.authorize(r, idText, o)
	if err != nil {
		return answer{}, err
	}
	list := []listedFunnel{}
	if h.opts.Funnels != nil {
		set, err := h.opts.Funnels.Set(r.Context(), projectID)
		if err != nil {
			return answer{}, fmt.Errorf("%w: %w", ErrFunnelsUnavailable, err)
		}
		for _, f := range set.Funnels {
			list = append(list, listedFunnel{Name: f.Name, SQL: f.SQL(), Steps: f.Conditions()})
		}
	}
	body, err := json.Marshal(list)
	if err != nil {
		return answer{}, fmt.Errorf("encoding the funnels: %w", err)
	}
	return answer{body: body}, nil
}

var _ Funnels = (*funnels.Cache)(nil)
