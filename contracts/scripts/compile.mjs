// Compiles contracts/src with the pinned solcjs (package.json) and writes contracts/artifacts/<Name>.json.
// `--check` recompiles into memory and fails if any committed artifact differs: the committed JSON is
// what `cargo build` and the devnet use, so it must be exactly what the sources produce.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = path.dirname(fileURLToPath(import.meta.url));
const contractsDir = path.resolve(here, "..");
const repoRoot = path.resolve(contractsDir, "..");
const srcDir = path.join(contractsDir, "src");
const outDir = path.join(contractsDir, "artifacts");
const nodeModules = path.join(repoRoot, "node_modules");

// Artifacts we ship; everything else compiled along the way is a dependency.
const SHIPPED = [
  "SessionKeyAccount",
  "SessionKeyAccountFactory",
  "SettlementContract",
  "TestStablecoin",
  "TestEip3009Token",
  "VerifyProbe",
  "CallFold",
  "KernelSessionValidator",
  "SafeSessionModule",
  "BiconomySessionModule",
];

const SETTINGS = {
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  // paris: no PUSH0/MCOPY/TSTORE, so the same bytecode deploys on chains that lag mainnet forks.
  evmVersion: "paris",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

// Every .sol under contracts/src, subdirectories included (host adapters live in e.g. src/kernel/).
function sources(dir = srcDir, out = {}) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sources(full, out);
    else if (entry.name.endsWith(".sol")) {
      out[path.relative(contractsDir, full).split(path.sep).join("/")] = { content: fs.readFileSync(full, "utf8") };
    }
  }
  return out;
}

function findImport(p) {
  const candidates = [path.join(contractsDir, p), path.join(nodeModules, p)];
  for (const c of candidates) {
    if (fs.existsSync(c)) return { contents: fs.readFileSync(c, "utf8") };
  }
  return { error: `not found: ${p}` };
}

function compile() {
  const input = { language: "Solidity", sources: sources(), settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) {
    if (e.severity !== "error" && !/SPDX|unreachable/.test(e.message)) console.error(e.formattedMessage);
  }
  if (errors.length) {
    for (const e of errors) console.error(e.formattedMessage);
    process.exit(1);
  }
  const artifacts = {};
  for (const [file, contracts] of Object.entries(output.contracts)) {
    if (!file.startsWith("src/")) continue;
    for (const [name, c] of Object.entries(contracts)) {
      if (!SHIPPED.includes(name)) continue;
      const artifact = {
        contractName: name,
        sourceName: file,
        compiler: `solc ${solc.version()}`,
        settings: { optimizer: SETTINGS.optimizer, viaIR: SETTINGS.viaIR, evmVersion: SETTINGS.evmVersion },
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
      artifacts[name] = JSON.stringify(artifact, null, 2) + "\n";
    }
  }
  return artifacts;
}

const check = process.argv.includes("--check");
const artifacts = compile();
let stale = [];
for (const name of SHIPPED) {
  if (!(name in artifacts)) continue;
  const file = path.join(outDir, `${name}.json`);
  if (check) {
    const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
    if (committed !== artifacts[name]) stale.push(name);
  } else {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(file, artifacts[name]);
    console.log(`wrote contracts/artifacts/${name}.json`);
  }
}
if (check) {
  if (stale.length) {
    console.error(
      `contract artifacts are stale: ${stale.join(", ")}\n` +
        "A source under contracts/src changed without a rebuild. Run `npm run compile` and commit contracts/artifacts/.",
    );
    process.exit(1);
  }
  console.log(`contract artifacts reproducible (${Object.keys(artifacts).length} checked, ${solc.version()})`);
}
