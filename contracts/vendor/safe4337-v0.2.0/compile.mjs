// Reproduces Safe4337Module.json and AddModulesLib.json in this directory from the upstream source.
// Not part of `make test`: the upstream source is not in this repository (see PROVENANCE.md).
//
//   node contracts/vendor/safe4337-v0.2.0/compile.mjs <safe-modules checkout>/4337 <solc@0.8.23 package dir> [--check]
//
// <4337 dir> is the `4337/` folder of github.com/safe-global/safe-modules at tag `4337/v0.2.0`, e.g.
//   mkdir -p /tmp/sm && git --git-dir=<clone> archive 4337/v0.2.0 4337/contracts | tar -x -C /tmp/sm   →  /tmp/sm/4337
// <solc dir> is an installed `solc@0.8.23` npm package (the upstream's compiler), e.g.
//   npm install --prefix /tmp/solc-0.8.23 solc@0.8.23  →  /tmp/solc-0.8.23/node_modules/solc
// Imports (@account-abstraction/contracts 0.6.0, @safe-global/safe-contracts 1.4.1) come from the
// workspace's node_modules, the versions the upstream's package-lock.json pins.
//
// Source unit names and settings are hardhat's (`contracts/<File>.sol`, npm imports by package path,
// optimizer 10 000 000 runs, EVM paris, ipfs metadata hash over literal sources as hardhat-deploy
// compiles), so the creation code is the one
// the upstream deployed: `--check` also recomputes the canonical CREATE2 addresses.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const [moduleDir, solcDir] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const check = process.argv.includes("--check");
if (!moduleDir || !solcDir) {
  console.error("usage: compile.mjs <safe-modules>/4337 <solc@0.8.23 package dir> [--check]");
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.resolve(here, "../../../node_modules");
const require = createRequire(import.meta.url);
const solc = require(path.resolve(solcDir));
const VERSION = "0.8.23+commit.f704f362";
if (!solc.version().startsWith(VERSION)) {
  console.error(`expected solc ${VERSION}, got ${solc.version()}`);
  process.exit(2);
}

// hardhat.config.ts at 4337/v0.2.0 (SOLIDITY_VERSION / SOLIDITY_SETTINGS unset), plus the
// `metadata.useLiteralContent` that hardhat-deploy 0.11 adds to every compilation (it stores the
// source in its deployment files). It changes only the metadata hash at the end of the bytecode,
// but that hash is part of the creation code and so of the canonical CREATE2 addresses.
const SETTINGS = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 10_000_000 },
  metadata: { useLiteralContent: true },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const SHIPPED = { "contracts/Safe4337Module.sol": "Safe4337Module", "contracts/AddModulesLib.sol": "AddModulesLib" };

const sources = {};
for (const unit of Object.keys(SHIPPED)) {
  sources[unit] = { content: fs.readFileSync(path.join(moduleDir, unit), "utf8") };
}

function findImport(p) {
  for (const c of [path.join(moduleDir, p), path.join(nodeModules, p)]) {
    if (fs.existsSync(c)) return { contents: fs.readFileSync(c, "utf8") };
  }
  return { error: `not found: ${p}` };
}

const output = JSON.parse(
  solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS }), { import: findImport }),
);
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}

let stale = 0;
for (const [unit, name] of Object.entries(SHIPPED)) {
  const c = output.contracts[unit][name];
  const artifact = {
    contractName: name,
    sourceName: unit,
    source: "github.com/safe-global/safe-modules tag 4337/v0.2.0 (commit d5de32548c968533ace53f514fd8ce2d276c1a27), folder 4337/",
    compiler: `solc ${solc.version()}`,
    settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, metadata: SETTINGS.metadata },
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 2) + "\n";
  const file = path.join(here, `${name}.json`);
  if (check) {
    const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    if (committed !== text) {
      console.error(`${name}.json differs from what the upstream source compiles to`);
      stale++;
    } else {
      console.log(`${name}.json matches`);
    }
  } else {
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
process.exit(stale ? 1 : 0);
