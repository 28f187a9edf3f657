# The two commands a fresh machine needs: `make run` and `make test`. The commands themselves live in
# package.json's scripts, so `npm test` and `make test` run the same thing.
NODE_MODULES := node_modules/.package-lock.json
SIZE ?= demo

.PHONY: run test test-unit build lint format bench bench-full perf-doc clean opensips-config browser

# `npm install` with the lockfile rather than `npm ci`: the registry this project builds from lacks the
# darwin/win32 builds of msgpackr-extract (an optional dependency), and `npm ci` refuses a lockfile without them.
$(NODE_MODULES): package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

# Incremental (dist/.tsbuildinfo): a rebuild with nothing changed takes a second. tsc does not bring back an
# output deleted by hand; `make clean` does.
build: $(NODE_MODULES)
	npm run --silent build

# Type-aware lint, the tiers rule, and the formatter's check.
lint: build
	npm run --silent lint

format: $(NODE_MODULES)
	npm run --silent format

# The console's end-to-end tests drive Debian's Chromium (test/helpers/browser.ts); npm downloads no browser.
# Installed when missing and this is root on Debian (CI, a fresh project machine); elsewhere, install it yourself.
CHROMIUM_PATH ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM_PATH)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "no Chromium at $(CHROMIUM_PATH): the console tests will fail (apt-get install chromium)" >&2; fi; \
	fi

# Every test: in-process ones (test/unit/) and the ones that start real processes (test/process/).
test: build browser
	npm test --silent

# The in-process tests alone: seconds, for the edit-build-test loop.
test-unit: build
	npm run --silent test:unit

# The control plane and a sidecar with a demo world of realistic size loaded through the store, a first
# sync, and example requests for both. Ctrl-C stops both. `make run SIZE=wholesale` for 2M rate rows.
run: build
	node dist/src/devkit/demo-stack.js --size $(SIZE)

# Benchmarks write bench/results/*.json; `make perf-doc` turns the newest into docs/performance.md.
# Never while anything else runs: on two cores a build or a test run is the benchmark's noise.
bench: build
	node dist/bench/run.js --profile short

bench-full: build
	node dist/bench/run.js --profile full

perf-doc: build
	node dist/bench/report.js

clean:
	rm -rf dist data

# The OpenSIPS script rendered with the example values into dist/opensips.cfg (opensips-config/README.md).
opensips-config: build
	node dist/src/cli/opensips-config.js --values opensips-config/values.example.json --out dist/opensips.cfg
