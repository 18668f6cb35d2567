// Compiles Biconomy Smart Account v2 from the pinned npm package with the compiler and settings
// Biconomy's own hardhat config uses (solc 0.8.17, optimizer 800 runs, viaIR, default EVM version
// and metadata) and writes contracts/vendor/biconomy-v2/<Name>.json. The Solidity sources stay in
// node_modules: only the compiled artifacts are committed, as data, with PROVENANCE.md beside them.
//
// Source unit names are the ones hardhat gives them in Biconomy's repository
// (`contracts/smart-account/...`, `@account-abstraction/...`, `@openzeppelin/...`), so the
// metadata hash at the end of the bytecode is the one Biconomy's build would produce from the
// same source files.
//
// `--check` recompiles into memory and fails if any committed artifact differs.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
// Biconomy's sources say `pragma solidity 0.8.17;` (exact), so the project's own solc cannot
// build them; package.json pins this one under an alias.
const solc = require("solc-0.8.17");

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const nodeModules = path.join(repoRoot, "node_modules");
const outDir = path.join(repoRoot, "contracts", "vendor", "biconomy-v2");

const PACKAGE = "@biconomy-devx/account-contracts-v2";
const packageDir = path.join(nodeModules, PACKAGE);
const packageVersion = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;

// The package's sources import OpenZeppelin 4.x by its plain name; the project itself uses 5.x,
// so 4.9.6 is installed under an alias and the plain name is redirected to it here.
const REMAPPINGS = [
  ["@openzeppelin/contracts/", "@openzeppelin/contracts-4.9.6/"],
  ["@account-abstraction/contracts/", "@account-abstraction/contracts/"],
];

// Contract name -> source unit. Everything else compiled along the way is a dependency.
const SHIPPED = {
  SmartAccount: "contracts/smart-account/SmartAccount.sol",
  SmartAccountFactory: "contracts/smart-account/factory/SmartAccountFactory.sol",
  EcdsaOwnershipRegistryModule: "contracts/smart-account/modules/EcdsaOwnershipRegistryModule.sol",
  SessionKeyManager: "contracts/smart-account/modules/SessionKeyManagerModule.sol",
  ERC20SessionValidationModule:
    "contracts/smart-account/modules/SessionValidationModules/ERC20SessionValidationModule.sol",
};

const SETTINGS = {
  optimizer: { enabled: true, runs: 800 },
  viaIR: true,
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function resolve(unit) {
  if (unit.startsWith("contracts/")) return path.join(packageDir, unit);
  for (const [from, to] of REMAPPINGS) {
    if (unit.startsWith(from)) return path.join(nodeModules, to + unit.slice(from.length));
  }
  return null;
}

function findImport(unit) {
  const file = resolve(unit);
  if (file && fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  return { error: `not found: ${unit}` };
}

function compile() {
  const sources = {};
  for (const unit of new Set(Object.values(SHIPPED))) {
    const found = findImport(unit);
    if (found.error) {
      console.error(`${found.error} (run \`npm ci\` at the workspace root)`);
      process.exit(1);
    }
    sources[unit] = { content: found.contents };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    for (const e of errors) console.error(e.formattedMessage);
    process.exit(1);
  }
  const artifacts = {};
  for (const [name, unit] of Object.entries(SHIPPED)) {
    const c = output.contracts?.[unit]?.[name];
    if (!c) {
      console.error(`${name} not found in ${unit}`);
      process.exit(1);
    }
    const artifact = {
      contractName: name,
      sourceName: unit,
      package: `${PACKAGE}@${packageVersion}`,
      compiler: `solc ${solc.version()}`,
      settings: { optimizer: SETTINGS.optimizer, viaIR: SETTINGS.viaIR },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    artifacts[name] = JSON.stringify(artifact, null, 2) + "\n";
  }
  return artifacts;
}

const check = process.argv.includes("--check");
const artifacts = compile();
const stale = [];
for (const [name, text] of Object.entries(artifacts)) {
  const file = path.join(outDir, `${name}.json`);
  if (check) {
    const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
    if (committed !== text) stale.push(name);
  } else {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote contracts/vendor/biconomy-v2/${name}.json`);
  }
}
if (check) {
  if (stale.length) {
    console.error(
      `Biconomy v2 artifacts are stale: ${stale.join(", ")}\n` +
        `They no longer match ${PACKAGE}@${packageVersion} compiled with ${solc.version()}. ` +
        "Run `node contracts/scripts/compile-biconomy.mjs` and commit contracts/vendor/biconomy-v2/.",
    );
    process.exit(1);
  }
  console.log(`Biconomy v2 artifacts reproducible (${Object.keys(artifacts).length} checked, ${solc.version()})`);
}
