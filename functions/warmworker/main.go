// Command warmworker is the Lambda function of the warm-up queue: it runs
// the dashboards' and funnels' queries of one batch of projects per
// message, ahead of the people who open the dashboards, so that Cube
// answers them from its cache.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"productanalytics/shared/app"
)

func main() {
	lambda.Start(app.WarmupWorker(context.Background(), app.Options{}))
}
