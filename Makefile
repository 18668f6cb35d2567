# Two commands a newcomer needs: `make demo` and `make test` (`make bench` for benchmarks).
# Everything else (npm tools, cargo dependencies, contract check) is installed from this repo's own files.

CARGO_TARGET_DIR ?= $(abspath ../target)
export CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: demo test bench deps contracts check-contracts fmt clippy cargo-test

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

cargo-test: deps
	$(CARGO) test --workspace --locked

test: deps check-contracts fmt clippy cargo-test

demo: deps
	$(CARGO) run --locked -q -p x402-aa-cli -- demo

# Measures on a fresh devnet and writes BENCHMARKS.md + BENCHMARKS.json (figures, never pass/fail).
bench: deps
	$(CARGO) bench --locked -p x402-aa-bench --bench offchain_verify
	$(CARGO) run --locked --release -p x402-aa-bench
