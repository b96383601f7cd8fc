package api

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/apigw"
)

// TestAPIGatewayEvents runs the API behind the Lambda adapter with the
// events API Gateway sends, in both payload formats.
func TestAPIGatewayEvents(t *testing.T) {
	f := newFakeCube(t, okCube)
	lambdaHandler := apigw.Handler(newTestHandler(t, f))
	auth := "Bearer " + project1Token(t)

	v2 := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /projects/{id}/product_analytics/request/load",
		RawPath: "/projects/1/product_analytics/request/load",
		Headers: map[string]string{"authorization": auth, "content-type": "application/json"},
		Body:    seedTracked,
	}
	v2.RequestContext.HTTP.Method = "POST"
	v2.RequestContext.RequestID = "v2-event"

	v1 := events.APIGatewayProxyRequest{
		HTTPMethod: "GET", Path: "/api/v4/projects/1/product_analytics/request/meta",
		Headers: map[string]string{"Authorization": auth},
	}
	v1.RequestContext.RequestID = "v1-event"

	noAuth := v2
	noAuth.Headers = map[string]string{}
	otherProject := v2
	otherProject.RawPath = "/projects/2/product_analytics/request/load"

	tests := []struct {
		name   string
		event  any
		status int
		body   string
	}{
		{"v2 load", v2, 200, cubeAnswer},
		{"v1 meta", v1, 200, cubeAnswer},
		{"v2 without token", noAuth, 401, `{"message":"401 Unauthorized","error":"401 Unauthorized"}`},
		{"v2 other project", otherProject, 404, `{"message":"404 Project Not Found","error":"404 Project Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := json.Marshal(tt.event)
			out, err := lambdaHandler(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var status int
			var body string
			switch r := out.(type) {
			case events.APIGatewayV2HTTPResponse:
				status, body = r.StatusCode, r.Body
			case events.APIGatewayProxyResponse:
				status, body = r.StatusCode, r.Body
			}
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %s, want %d %s", status, body, tt.status, tt.body)
			}
		})
	}
}
