// Command warmup is the scheduled Lambda function that runs the dashboards'
// queries for each project ahead of the people who open the dashboards.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"productanalytics/shared/app"
)

func main() {
	lambda.Start(app.Warmup(context.Background(), app.Options{}))
}
