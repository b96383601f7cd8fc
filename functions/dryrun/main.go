// Command dryrun is the Lambda function serving the product analytics dry-run endpoint.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"productanalytics/shared/apigw"
	"productanalytics/shared/app"
	"productanalytics/shared/cube"
)

func main() {
	lambda.Start(apigw.Handler(app.Lambda(cube.DryRun)))
}
