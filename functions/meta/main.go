// Command meta is the Lambda function serving the product analytics meta endpoint.
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
	h, _ := app.New(context.Background(), os.Getenv, os.Stdout, cube.Meta)
	lambda.Start(apigw.Handler(h))
}
