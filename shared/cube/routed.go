package cube

import (
	"context"
	"errors"
	"fmt"

	"productanalytics/shared/deploy"
)

// Routed sends every call about a project to the Cube of the project's
// deployment, through that deployment's own Client: its key, its tokens, its
// connections. A Continue-wait is re-sent inside Client.Do, so it always
// reaches the Cube that began the query. Routed is safe for concurrent use.
type Routed struct {
	router  *deploy.Router
	deps    []deploy.Deployment // router.Deployments(), kept: it copies
	clients []*Client           // in the order of deps
}

// NewRouted builds a Routed over router, with the client newClient returns
// for each of its deployments.
func NewRouted(router *deploy.Router, newClient func(deploy.Deployment) (*Client, error)) (*Routed, error) {
	r := &Routed{router: router, deps: router.Deployments()}
	for _, d := range r.deps {
		c, err := newClient(d)
		if err != nil {
			return nil, fmt.Errorf("building the client of Cube deployment %s: %w", d.Name, err)
		}
		r.clients = append(r.clients, c)
	}
	return r, nil
}

// Do sends req to the Cube of req.ProjectID's deployment (see Client.Do).
// The Response, and an *Error, name the deployment.
func (r *Routed) Do(ctx context.Context, req Request) (*Response, error) {
	i := r.router.Index(req.ProjectID)
	name := r.deps[i].Name
	res, err := r.clients[i].Do(ctx, req)
	if res != nil {
		res.Deployment = name
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		e.Deployment = name
	}
	return res, err
}

// Client returns the client of the deployment called name.
func (r *Routed) Client(name string) (*Client, bool) {
	for i, d := range r.deps {
		if d.Name == name {
			return r.clients[i], true
		}
	}
	return nil, false
}

// For returns the deployment of project and its client.
func (r *Routed) For(project int64) (deploy.Deployment, *Client) {
	i := r.router.Index(project)
	return r.deps[i], r.clients[i]
}

// Router returns the router projects are placed with.
func (r *Routed) Router() *deploy.Router { return r.router }
