# The two commands a fresh machine needs: `make run` and `make test`.
NODE_MODULES := node_modules/.package-lock.json
PORT ?= 8090
SIZE ?= demo

.PHONY: run test build lint bench bench-full clean

# `npm install` with the lockfile rather than `npm ci`: the registry this project builds from lacks the
# darwin/win32 builds of msgpackr-extract (an optional dependency), and `npm ci` refuses a lockfile without them.
$(NODE_MODULES): package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

build: $(NODE_MODULES)
	npx tsc -p tsconfig.json

lint: build
	npx eslint src sync test bench

test: build
	node --test --test-concurrency=2 --test-timeout=120000 dist/test/

# Starts the sidecar with a generated demo snapshot of realistic size and prints example requests.
run: build
	node dist/bench/dataset.js --size $(SIZE) --out data/demo/snapshot.msgpack --traffic data/demo/traffic.json
	node dist/bench/print-examples.js --traffic data/demo/traffic.json --port $(PORT)
	node dist/src/main.js --port $(PORT) --data-dir data/demo/sidecar --snapshot data/demo/snapshot.msgpack --watch-dir data/demo/incoming

bench: build
	node dist/bench/run.js --profile short

bench-full: build
	node dist/bench/run.js --profile full

clean:
	rm -rf dist data
