// Command warmup is the scheduled Lambda function of the warm-up: it lists
// the projects to warm (the configured ones and those opened recently) and
// sends them, in batches per Cube deployment, to the warm-up queue, whose
// worker (functions/warmworker) runs their dashboards' queries.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"productanalytics/shared/app"
)

func main() {
	lambda.Start(app.WarmupPlanner(context.Background(), app.Options{}))
}
