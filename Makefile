# The two commands a fresh machine needs: `make run` and `make test`.
NODE_MODULES := node_modules/.package-lock.json
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
	node --test --test-concurrency=2 --test-timeout=120000 dist/test/unit/*.test.js dist/test/process/*.test.js

# The control plane and a sidecar with a demo world of realistic size loaded through the store, a first
# sync, and example requests for both. Ctrl-C stops both. `make run SIZE=wholesale` for 2M rate rows.
run: build
	node dist/src/devkit/demo-stack.js --size $(SIZE)

bench: build
	node dist/bench/run.js --profile short

bench-full: build
	node dist/bench/run.js --profile full

clean:
	rm -rf dist data

# The OpenSIPS script rendered with the example values into dist/opensips.cfg (opensips-config/README.md).
.PHONY: opensips-config
opensips-config: build
	node dist/src/cli/opensips-config.js --values opensips-config/values.example.json --out dist/opensips.cfg
