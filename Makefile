# Two commands a newcomer needs: `make demo` and `make test` (`make bench` for benchmarks).
# Everything else (npm tools, cargo dependencies, contract check) is installed from this repo's own files.

CARGO_TARGET_DIR ?= $(abspath ../target)
export CARGO_TARGET_DIR
# Incremental caches roughly double the debug build on disk and buy nothing on a one-shot CI run.
CARGO_INCREMENTAL ?= 0
export CARGO_INCREMENTAL
CARGO ?= cargo

.PHONY: demo test bench deps contracts check-contracts fmt clippy doc deny cargo-test chromium postgres

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

# Rebuild the committed artifacts after editing contracts/src.
contracts: deps
	node contracts/scripts/compile.mjs
	node contracts/scripts/compile-biconomy.mjs

# Fails when contracts/src changed without `make contracts`.
check-contracts: deps
	node contracts/scripts/compile.mjs --check
	node contracts/scripts/compile-biconomy.mjs --check

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Every doc comment's links resolve; rustdoc warnings fail the build.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

# cargo-deny, pinned, built once from crates.io into the target dir (skipped while present). Built
# unoptimised: on a 2-core box that is ~1/3 of the CPU time of its own release profile (fat LTO,
# one codegen unit), and a check still takes seconds.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY_ROOT := $(CARGO_TARGET_DIR)/tools/cargo-deny-$(CARGO_DENY_VERSION)
CARGO_DENY := $(CARGO_DENY_ROOT)/bin/cargo-deny

$(CARGO_DENY):
	env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
		CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
		$(CARGO) install --locked --quiet cargo-deny@$(CARGO_DENY_VERSION) --root $(CARGO_DENY_ROOT)

# Licenses, banned/duplicate crates and sources, as deny.toml says (advisories: see deny.toml).
# Run `cargo deny check bans` without --hide-inclusion-graph to see why a duplicate is there.
deny: $(CARGO_DENY)
	$(CARGO_DENY) --locked check --hide-inclusion-graph licenses bans sources

# Headless Chromium and chromedriver for the owner console's browser test (Debian packages,
# installed only when missing; apt-get needs root, as on CI).
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

# PostgreSQL server binaries for the Postgres tests (Debian package, installed only when missing;
# no server is set up: scripts/with-postgres.sh starts a throwaway cluster per test run).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends postgresql; \
	fi

# The Postgres tests (facilitator registry, agent ledger) run against a throwaway cluster on
# loopback, stopped and deleted afterwards even when tests fail; set X402_AA_TEST_POSTGRES_URL to
# use a server of your own instead.
# A test whose devnet lives longer than 15 minutes has hung: the devnet's watchdog stops the
# test binary and names the test, instead of CI waiting for its overall timeout.
cargo-test: deps chromium postgres
	X402_AA_DEVNET_MAX_SECS=900 scripts/with-postgres.sh $(CARGO) test --workspace --locked

test: deps check-contracts fmt clippy doc deny cargo-test

demo: deps
	$(CARGO) run --locked -q -p x402-aa-cli -- demo

# Measures on a fresh devnet and writes BENCHMARKS.md + BENCHMARKS.json (figures, never pass/fail).
bench: deps
	$(CARGO) bench --locked -p x402-aa-bench --bench offchain_verify
	$(CARGO) run --locked --release -p x402-aa-bench
