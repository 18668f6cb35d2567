//! Runtime loading of compiled contracts.
//!
//! Bytecode is read when a devnet starts rather than embedded at compile time, so this crate
//! builds before `npm install` has run and before the project's own contracts are compiled.

use std::{
    env,
    path::{Path, PathBuf},
};

use alloy::{json_abi::JsonAbi, primitives::Bytes};
use serde::Deserialize;

/// Overrides where `node_modules` is looked for (the directory itself, not its parent).
pub const NODE_MODULES_ENV: &str = "X402_AA_NODE_MODULES";
/// Overrides where the project's compiled artifacts are looked for.
pub const PROJECT_ARTIFACTS_ENV: &str = "X402_AA_CONTRACT_ARTIFACTS";

const NPM_ARTIFACTS: &str = "@account-abstraction/contracts/artifacts";
const PROJECT_ARTIFACTS: &str = "contracts/artifacts";

/// A compiled contract: its ABI plus creation and runtime bytecode.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The contract name it was loaded by (the file stem).
    pub name: String,
    /// The artifact file it was read from.
    pub path: PathBuf,
    /// The contract's ABI.
    pub abi: JsonAbi,
    /// Creation code; append ABI-encoded constructor arguments to deploy.
    pub bytecode: Bytes,
    /// Runtime code, as it sits at the contract's address after deployment (for code
    /// comparisons and state overrides).
    pub deployed_bytecode: Bytes,
}

/// Why an artifact could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// No artifact directory above this crate's source and no override; set the environment
    /// variable (typical when the binary runs outside the checkout).
    #[error("could not find {what} above {start} (set ${env_var} to point at it)")]
    DirNotFound {
        /// The directory looked for (`node_modules`, `contracts/artifacts`).
        what: &'static str,
        /// Where the upward search started.
        start: PathBuf,
        /// The variable that overrides the search.
        env_var: &'static str,
    },
    /// The directory exists but has no artifact of that name: a typo, or the install or
    /// compile step has not run (the hint says which command).
    #[error("artifact {path} does not exist{hint}")]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// The command that produces it, prefixed with a space, for the message.
        hint: &'static str,
    },
    /// The file exists but could not be read.
    #[error("could not read artifact {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a hardhat or forge artifact (no `abi`, `bytecode`, `deployedBytecode`).
    #[error("artifact {path} is not valid JSON of the expected shape: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde refused.
        #[source]
        source: serde_json::Error,
    },
    /// The artifact cannot be deployed (an interface or abstract contract was named).
    #[error("artifact {path} has empty creation bytecode (abstract contract or interface?)")]
    EmptyBytecode {
        /// The file.
        path: PathBuf,
    },
}

/// Loads `<node_modules>/@account-abstraction/contracts/artifacts/<name>.json` (v0.6 hardhat
/// format), e.g. `EntryPoint`, `SimpleAccountFactory`, `VerifyingPaymaster`.
pub fn npm_artifact(name: &str) -> Result<Artifact, ArtifactError> {
    let dir = node_modules_dir()?.join(NPM_ARTIFACTS);
    load(name, &dir, " (run `npm ci` at the workspace root)")
}

/// Loads `contracts/artifacts/<name>.json`, the project's own compiled contracts, e.g.
/// `SettlementContract`, `TestStablecoin`, `SessionKeyAccountFactory`.
pub fn project_artifact(name: &str) -> Result<Artifact, ArtifactError> {
    load(name, &project_artifacts_dir()?, " (run `npm run compile` at the workspace root)")
}

/// The `node_modules` directory: `$X402_AA_NODE_MODULES`, else the nearest one above this
/// crate's source directory.
pub fn node_modules_dir() -> Result<PathBuf, ArtifactError> {
    locate("node_modules", NODE_MODULES_ENV, |dir| {
        let candidate = dir.join("node_modules");
        candidate.join(NPM_ARTIFACTS).is_dir().then_some(candidate)
    })
}

/// The project's artifact directory: `$X402_AA_CONTRACT_ARTIFACTS`, else the nearest
/// `contracts/artifacts` above this crate's source directory.
pub fn project_artifacts_dir() -> Result<PathBuf, ArtifactError> {
    locate("contracts/artifacts", PROJECT_ARTIFACTS_ENV, |dir| {
        let candidate = dir.join(PROJECT_ARTIFACTS);
        candidate.is_dir().then_some(candidate)
    })
}

fn locate(
    what: &'static str,
    env_var: &'static str,
    probe: impl Fn(&Path) -> Option<PathBuf>,
) -> Result<PathBuf, ArtifactError> {
    if let Some(dir) = env::var_os(env_var) {
        return Ok(PathBuf::from(dir));
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().find_map(probe).ok_or_else(|| ArtifactError::DirNotFound {
        what,
        start: start.to_path_buf(),
        env_var,
    })
}

/// Both hardhat (`bytecode: "0x.."`) and forge (`bytecode: {object: "0x.."}`) spell bytecode;
/// accepting either lets the project switch compilers without touching the loader.
#[derive(Deserialize)]
#[serde(untagged)]
enum Code {
    Hex(Bytes),
    Object { object: Bytes },
}

impl Code {
    fn into_bytes(self) -> Bytes {
        match self {
            Self::Hex(b) | Self::Object { object: b } => b,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArtifact {
    abi: JsonAbi,
    bytecode: Code,
    deployed_bytecode: Code,
}

fn load(name: &str, dir: &Path, hint: &'static str) -> Result<Artifact, ArtifactError> {
    let path = dir.join(format!("{name}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ArtifactError::Missing { path, hint });
        }
        Err(source) => return Err(ArtifactError::Read { path, source }),
    };
    let raw: RawArtifact = match serde_json::from_str(&text) {
        Ok(raw) => raw,
        Err(source) => return Err(ArtifactError::Parse { path, source }),
    };
    let bytecode = raw.bytecode.into_bytes();
    if bytecode.is_empty() {
        return Err(ArtifactError::EmptyBytecode { path });
    }
    Ok(Artifact {
        name: name.to_owned(),
        path,
        abi: raw.abi,
        bytecode,
        deployed_bytecode: raw.deployed_bytecode.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_npm_entry_point() {
        let a = npm_artifact("EntryPoint").unwrap();
        assert!(a.bytecode.len() > 20_000);
        assert!(a.abi.function("handleOps").is_some());
    }

    #[test]
    fn missing_artifact_is_a_typed_error() {
        let err = npm_artifact("NoSuchContract").unwrap_err();
        assert!(matches!(err, ArtifactError::Missing { .. }), "{err}");
    }

    #[test]
    fn interface_without_bytecode_is_refused() {
        let err = npm_artifact("IEntryPoint").unwrap_err();
        assert!(matches!(err, ArtifactError::EmptyBytecode { .. }), "{err}");
    }
}
