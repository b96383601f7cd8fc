# Product analytics API on AWS Lambda. `make run` and `make test` are the two
# commands; each installs what it needs.

SHELL := bash
.DEFAULT_GOAL := build
GO ?= go
FUNCTIONS := load dryrun meta warmup warmworker
# sam build's targets, one per function of template.yaml: build-<LogicalId>
SAM_TARGETS := build-LoadFunction build-DryRunFunction build-MetaFunction build-WarmupFunction build-WarmworkerFunction
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"
STATICCHECK_VERSION := v0.8.2

.PHONY: run token page build test test-repeat fuzz lint bench bench-tenants bench-data bench-warmup bench-neighbours bench-memory fuzz-cube soak clean $(addprefix build-,$(FUNCTIONS)) $(SAM_TARGETS)

## run: the API on 127.0.0.1:3000 with a real Cube, demo data and a Secrets
## Manager emulator (PORT and CUBE_PORT change the ports; LISTEN=0.0.0.0
## lets containers, sam local's, reach it; CUBES=3 starts three Cubes over
## the same data, each a deployment the API routes projects to); Ctrl-C
## stops it all
run:
	@mkdir -p bin
	$(GO) build -o bin/devstack ./cmd/devstack
	@exec bin/devstack run

## token: a caller token for the local stack, valid one hour: make token PROJECT=1
token:
	@$(GO) run ./cmd/devstack token -project "$(PROJECT)"

## page: the dashboards page as static files in bin/page (OUT=<dir> for
## another folder), for a static host in front of a deployed API
page:
	@$(GO) run ./cmd/devstack page -out "$(or $(OUT),bin/page)"

## build: the Lambda bootstraps, bin/<function>/bootstrap (linux/arm64)
build: $(addprefix build-,$(FUNCTIONS))

$(addprefix build-,$(FUNCTIONS)): build-%:
	@mkdir -p bin/$*
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS_LAMBDA) -o bin/$*/bootstrap ./functions/$*
	@ls -l bin/$*/bootstrap | awk '{printf "bin/%s/bootstrap: %.1f MB\n", "$*", $$5/1048576}'

## build-<LogicalId>: what `sam build` runs for each function of template.yaml
## (makefile build method); it puts that function's bootstrap in $(ARTIFACTS_DIR)
build-LoadFunction: build-load
build-DryRunFunction: build-dryrun
build-MetaFunction: build-meta
build-WarmupFunction: build-warmup
build-WarmworkerFunction: build-warmworker
$(SAM_TARGETS):
	@test -n "$(ARTIFACTS_DIR)" || { echo "$@: ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@mkdir -p "$(ARTIFACTS_DIR)"
	cp bin/$(patsubst build-%,%,$<)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"

## test: every test, unit and integration, in a shuffled order whose seed
## is printed: `make test SHUFFLE=<seed>` replays it
SHUFFLE ?= $(shell date +%s)
test:
	@echo "test order: -shuffle=$(SHUFFLE) (replay with: make test SHUFFLE=$(SHUFFLE))"
	$(GO) test -race -count=1 -shuffle=$(SHUFFLE) ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=200000x

## fuzz: each fuzz target for FUZZTIME inputs (default 3000000x, a few
## minutes each); make test runs 200000x each (about 10 s). A count, not a
## duration: Go 1.26's fuzzing coordinator can report its own deadline as
## a failure, "context deadline exceeded", when a duration ends on a loaded
## machine (go.dev/issue/75804, fixed in Go 1.27); a count sets none.
FUZZ := ./shared/request:FuzzParseQuery ./shared/request:FuzzParseBody ./shared/request:FuzzScanner
FUZZTIME ?= 3000000x
fuzz:
	@for f in $(FUZZ); do pkg=$${f%%:*}; name=$${f##*:}; \
	  echo "fuzzing $$name in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## test-repeat: the whole suite N times (default 5), each with a new shuffle
## seed; prints which tests failed in which run (not part of CI)
N ?= 5
test-repeat:
	$(GO) run ./cmd/testrepeat -n $(N)

## lint: formatting, vet (here, for macOS on arm64 and for Linux on arm64),
## staticcheck, and the SAM template (cfn-lint, offline)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# make run and make test must keep building where developers work
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cfn-lint template.yaml

## bench: the handler's own cost per request, the request checks', the Cube
## client's, each access mode's; on the local stack, side by side in one run:
## Cube, nginx in front of it (when installed: apt-get install nginx-light),
## the API's server and the Lambda bootstraps for load, dry-run and meta; a
## dashboard opening; answers from 20 KB to 12 MB with and without gzip; the
## load function's cold start and warm invoke; a slow dashboard query's first
## load with and without a warm-up; what one Cube serves to 1 to 64 callers
## at once (the template's limits); the load function's memory over 20,000
## warm invokes; the bootstraps' sizes
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./shared/...
	$(GO) test -run '^$$' -bench 'Proxies|AnswerSizes' -benchtime 1x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'DashboardOpening' -benchtime 30x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'LambdaLoad/cold' -benchtime 15x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'LambdaLoad/warm' -benchtime 200x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'SlowDashboard' -benchtime 3x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'OneCube' -benchtime 400x -count 1 ./test/integration/
	$(GO) test -run '^$$' -bench 'LambdaWarmRSS' -benchtime 20000x -count 1 -timeout 30m ./test/integration/
	$(GO) test -run '^$$' -bench 'FairShare|DashboardOpening' -benchtime 1x -count 1 -timeout 30m ./test/cubefront/

## soak: the local stack as make run starts it, under a steady mix of the
## API's calls (projects 1 and 2, refusals, bad inputs) with CONCURRENCY
## in flight (16) for DURATION (10m); prints requests/s, answers by status,
## latency, and the API's and Cube's memory and descriptors as it goes.
## Not part of make test, which runs a one-minute soak.
CONCURRENCY ?= 16
DURATION ?= 10m
soak:
	@mkdir -p bin
	$(GO) build -o bin/devstack ./cmd/devstack
	$(GO) run ./cmd/soak -devstack bin/devstack -concurrency $(CONCURRENCY) -duration $(DURATION)

## bench-tenants: what each active project costs one Cube with its default
## bounds: RSS at TENANTS projects (default 10,100,500,1000) and over two
## more passes, compilations of the data model, a new project's first query
## beside a known one's, a dashboard viewed after a warm-up; prints a table.
## Its data (small projects) is generated once into .local/bench-tenants.
bench-tenants:
	$(GO) test -run '^$$' -bench 'Tenants' -benchtime 1x -count 1 -timeout 120m ./test/tenants/

## bench-data: dashboards at real volume: generates once (cached in
## .local/bench-data) projects of SIZES events over 90 days (default
## 100000,1000000,10000000; SIZES=100000000 adds 100M) and prints, per size
## and for 7, 30 and 90 days, each panel's cold and warm opening through the
## API beside the same SQL straight on the store, and the store's memory;
## STORE=clickhouse runs it on ClickHouse (installed when missing)
bench-data:
	$(GO) test -run '^$$' -bench 'Data' -benchtime 1x -count 1 -timeout 600m ./test/volume/

## bench-warmup: the warm-up's fan-out over 3 local Cubes: 1,000 projects of
## 300 events (WARMUP_PROJECTS, WARMUP_EVENTS), planned into the FIFO queue
## (moto) and warmed by the worker's handler, 2 batches of 10 projects at once
## per Cube, 4 queries each; prints the total time, projects per minute per
## Cube, the most queries in flight per Cube, how many dashboard queries are
## then answered from Cube's cache, and a first dashboard opening after it
## beside one without it. Its data is generated once into .local/bench-warmup.
bench-warmup:
	$(GO) test -run '^$$' -bench 'Warmup' -benchtime 1x -count 1 -timeout 60m ./test/warmup/

## bench-neighbours: project 2's cached dashboard answers through the API
## alone for NEIGHBOURS_DURATION (60s), then as long beside project 1 at
## its worst allowed behaviour: NEIGHBOURS_WORKERS (8) workers, half through
## the API and half straight to Cube with include_token's token, sending the
## largest exports, ungrouped exports, compared ranges and blends the budget
## allows, each a new answer; prints both phases side by side (median, p90,
## max and their ratios, Cube's /readyz latency and memory, project 1's
## answers by status) and whether project 2's median stays within 3x
NEIGHBOURS_DURATION ?= 60s
NEIGHBOURS_WORKERS ?= 8
bench-neighbours:
	NEIGHBOURS_DURATION=$(NEIGHBOURS_DURATION) NEIGHBOURS_WORKERS=$(NEIGHBOURS_WORKERS) \
	  $(GO) test -run '^$$' -bench 'Neighbours' -benchtime 1x -count 1 -timeout 30m ./test/neighbours/

## bench-memory: Cube's heap under CUBEMEMORY_DURATION (10m) of distinct
## large allowed answers (project 1 exporting with CUBEMEMORY_WORKERS, 2,
## project 2's dashboard beside), printed every 30 s with the highest;
## fails if Cube stops
bench-memory:
	$(GO) test -run '^$$' -bench 'LargeAnswersHeap' -benchtime 1x -count 1 -timeout 30m ./test/cubememory/

## fuzz-cube: routes, methods, bodies and headers straight to Cube with
## tenant tokens for FUZZ_DURATION (2m): Cube never exits, never answers a
## stack or a path (make test runs it for 20 s)
FUZZ_DURATION ?= 2m
fuzz-cube:
	FUZZ_DURATION=$(FUZZ_DURATION) $(GO) test -count=1 -run 'TestRouteFuzz' -v ./test/cubefront/

clean:
	rm -rf bin
