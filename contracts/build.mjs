// Compiles contracts/*.sol with the solc pinned in package-lock.json and writes the ABI +
// bytecode artifacts that the Python runtime loads (chain/artifacts/*.json), so Python never
// needs Node. Run with `make contracts` (node contracts/build.mjs).
//
// Each artifact carries `sources_sha256`, which chain/artifacts/__init__.py recomputes without
// Node; a test fails when the committed artifacts no longer match the sources. The hash is
// sha256 over, for every contracts/*.sol sorted by file name: name, NUL, file bytes, NUL; then
// "@openzeppelin/contracts@<version>" with the version from package-lock.json.
//
// For the contracts deployed on a real chain it also writes the Solidity standard-JSON input an
// explorer needs to verify them (chain/artifacts/standard-input/<name>.json): exactly the sources
// the contract's metadata names (its own file and every import, OpenZeppelin's inlined) and the
// settings it was compiled with, so recompiling it reproduces the deployed bytecode byte for byte
// (metadata hash included). chain/verification.py hands it out with `bookme deploy`.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CONTRACTS_DIR = join(ROOT, "contracts");
const ARTIFACTS_DIR = join(ROOT, "chain", "artifacts");
const NODE_MODULES = join(ROOT, "node_modules");
// HostileToken is a test-only mock; OwnerTimelock is the escrow's owner (chain/deploy.py).
const CONTRACT_NAMES = ["BookingEscrow", "HostileToken", "MockUSDC", "OwnerTimelock"];
// What `bookme deploy` puts on a real chain, hence what an explorer must be able to verify.
const VERIFIED_NAMES = ["BookingEscrow", "OwnerTimelock"];
const STANDARD_INPUT_DIR = join(ARTIFACTS_DIR, "standard-input");
const OZ = "@openzeppelin/contracts";

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

function lockedVersion(pkg) {
  const entry = readJson(join(ROOT, "package-lock.json")).packages[`node_modules/${pkg}`];
  if (!entry) throw new Error(`${pkg} is not in package-lock.json`);
  return entry.version;
}

function installedVersion(pkg) {
  return readJson(join(NODE_MODULES, pkg, "package.json")).version;
}

// The lock is the source of truth; refuse to build with a node_modules that drifted from it.
function checkedVersion(pkg) {
  const locked = lockedVersion(pkg);
  const installed = installedVersion(pkg);
  if (locked !== installed) {
    throw new Error(`${pkg}: installed ${installed} but package-lock.json pins ${locked}; run make install`);
  }
  return locked;
}

function sourceFiles() {
  return readdirSync(CONTRACTS_DIR)
    .filter((name) => name.endsWith(".sol"))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function sourcesSha256(files, ozVersion) {
  const hash = createHash("sha256");
  for (const name of files) {
    hash.update(Buffer.from(name, "utf8"));
    hash.update(Buffer.from([0]));
    hash.update(readFileSync(join(CONTRACTS_DIR, name)));
    hash.update(Buffer.from([0]));
  }
  hash.update(Buffer.from(`${OZ}@${ozVersion}`, "utf8"));
  return hash.digest("hex");
}

function findImports(path) {
  if (!path.startsWith(`${OZ}/`)) return { error: `import outside ${OZ}: ${path}` };
  try {
    return { contents: readFileSync(join(NODE_MODULES, path), "utf8") };
  } catch (err) {
    return { error: `cannot read ${path}: ${err.message}` };
  }
}

// The standard-JSON input that compiles `name` alone: the sources its metadata lists, the same
// settings. Sources outside the metadata would not change the bytecode, but an explorer (and a
// reviewer) should see only what the contract is built from.
function standardInput(name, compiled, input, settings) {
  const metadata = JSON.parse(compiled.metadata);
  const sources = {};
  for (const path of Object.keys(metadata.sources).sort()) {
    const own = input.sources[path];
    const content = own ? own.content : findImports(path).contents;
    if (content === undefined) throw new Error(`${name}: cannot read source ${path}`);
    sources[path] = { content };
  }
  return {
    language: "Solidity",
    sources,
    settings: {
      optimizer: settings.optimizer,
      evmVersion: settings.evmVersion,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
    },
  };
}

function main() {
  const solcVersion = checkedVersion("solc");
  const ozVersion = checkedVersion(OZ);
  // "0.8.27+commit.40a35a09.Emscripten.clang" -> "0.8.27+commit.40a35a09"
  const longVersion = solc.version().split(".Emscripten")[0];
  if (!longVersion.startsWith(`${solcVersion}+`)) {
    throw new Error(`solc reports ${longVersion}, expected ${solcVersion}`);
  }

  const files = sourceFiles();
  const settings = {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "metadata"] } },
  };
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(
      files.map((name) => [`contracts/${name}`, { content: readFileSync(join(CONTRACTS_DIR, name), "utf8") }]),
    ),
    settings,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) {
    // OpenZeppelin's own warnings (e.g. its transient-storage notice) are known and reviewed.
    const fromOz = d.sourceLocation?.file?.startsWith(`${OZ}/`);
    if (d.severity === "error" || !fromOz) console.error(d.formattedMessage ?? d.message);
  }
  if (diagnostics.some((d) => d.severity === "error")) process.exit(1);

  const sha = sourcesSha256(files, ozVersion);
  for (const name of CONTRACT_NAMES) {
    const compiled = output.contracts[`contracts/${name}.sol`]?.[name];
    if (!compiled) throw new Error(`no output for ${name}`);
    const artifact = {
      contract: name,
      solc: longVersion,
      sources_sha256: sha,
      openzeppelin: ozVersion,
      settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion },
      abi: compiled.abi,
      bytecode: `0x${compiled.evm.bytecode.object}`,
    };
    const path = join(ARTIFACTS_DIR, `${name}.json`);
    writeFileSync(path, `${JSON.stringify(artifact, null, 2)}\n`);
    console.log(`wrote ${path} (${compiled.evm.bytecode.object.length / 2} bytes)`);
  }
  mkdirSync(STANDARD_INPUT_DIR, { recursive: true });
  for (const name of VERIFIED_NAMES) {
    const compiled = output.contracts[`contracts/${name}.sol`][name];
    const path = join(STANDARD_INPUT_DIR, `${name}.json`);
    writeFileSync(path, `${JSON.stringify(standardInput(name, compiled, input, settings), null, 2)}\n`);
    console.log(`wrote ${path}`);
  }
}

main();
