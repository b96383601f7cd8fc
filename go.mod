module productanalytics

go 1.26
