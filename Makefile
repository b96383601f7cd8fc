# Product analytics API on AWS Lambda. `make run` and `make test` are the two
# commands; each installs what it needs.

SHELL := bash
GO ?= go
FUNCTIONS := load dryrun meta
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: run token build test lint bench clean $(addprefix build-,$(FUNCTIONS))

## run: the API on 127.0.0.1:3000 with a real Cube, demo data and a Secrets
## Manager emulator (PORT and CUBE_PORT change the ports); Ctrl-C stops it all
run:
	@mkdir -p bin
	$(GO) build -o bin/devstack ./cmd/devstack
	@exec bin/devstack run

## token: a caller token for the local stack, valid one hour: make token PROJECT=1
token:
	@$(GO) run ./cmd/devstack token -project "$(PROJECT)"

## build: the Lambda bootstraps, bin/<function>/bootstrap (linux/arm64)
build: $(addprefix build-,$(FUNCTIONS))

$(addprefix build-,$(FUNCTIONS)): build-%:
	@mkdir -p bin/$*
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS_LAMBDA) -o bin/$*/bootstrap ./functions/$*
	@ls -l bin/$*/bootstrap | awk '{printf "bin/%s/bootstrap: %.1f MB\n", "$*", $$5/1048576}'

## test: every test, unit and integration
test:
	$(GO) test -race -count=1 ./...

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the handler's own cost per request, and the Cube client's
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./shared/...

clean:
	rm -rf bin
