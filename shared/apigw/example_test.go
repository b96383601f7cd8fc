package apigw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/apigw"
)

// Any http.Handler serves API Gateway: the HTTP API's payload 2.0 event
// becomes an http.Request, the handler's answer the response event. A
// Lambda function's main is lambda.Start(apigw.Handler(h)).
func ExampleHandler() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"path":%q,"id":%q,"body":%s}`, r.Method, r.URL.Path, r.Header.Get("X-Request-Id"), body)
	})
	event := events.APIGatewayV2HTTPRequest{
		Version: "2.0",
		RawPath: "/projects/1/product_analytics/request/load",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    `{"query":{}}`,
	}
	event.RequestContext.HTTP.Method = "POST"
	event.RequestContext.RequestID = "Cz3kPg5XoAMEb0w="
	raw, _ := json.Marshal(event)

	out, err := apigw.Handler(h)(context.Background(), raw)
	if err != nil {
		panic(err)
	}
	resp := out.(events.APIGatewayV2HTTPResponse)
	fmt.Println(resp.StatusCode, resp.Body)
	// Output: 200 {"method":"POST","path":"/projects/1/product_analytics/request/load","id":"Cz3kPg5XoAMEb0w=","body":{"query":{}}}
}
