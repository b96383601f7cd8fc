// Command dryrun is the Lambda function serving the product analytics dry-run endpoint.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"productanalytics/shared/apigw"
	"productanalytics/shared/app"
	"productanalytics/shared/cube"
)

func main() {
	h, _ := app.New(context.Background(), os.Getenv, os.Stdout, cube.DryRun)
	lambda.Start(apigw.Handler(h))
}
