//! Bytecode from hardhat-style JSON artifacts: the npm EntryPoint v0.6 package and our
//! `contracts/artifacts` (or another directory, to run the same tests against an older build).

use std::path::{Path, PathBuf};

use alloy::primitives::Bytes;

use crate::{Error, Result};

/// Directory overriding `contracts/artifacts`, e.g. a checkout of the artifacts before issue 11.
pub const ARTIFACTS_ENV: &str = "X402_POLICY_ARTIFACTS";

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory of `<Name>.json` artifacts.
#[derive(Debug, Clone)]
pub struct Artifacts {
    dir: PathBuf,
}

/// Our compiled contracts.
pub type ProjectArtifacts = Artifacts;

impl Artifacts {
    /// The EntryPoint v0.6 stack as `@account-abstraction/contracts@0.6.0` ships it in the
    /// linked `node_modules` (EntryPoint, SimpleAccountFactory, VerifyingPaymaster): the
    /// canonical bytecode, so the addresses match the real chains'. A missing `npm ci` shows
    /// up later, as [`Error::Setup`] from [`Artifacts::bytecode`].
    pub fn npm() -> Result<Self> {
        Ok(Self {
            dir: workspace_root().join("node_modules/@account-abstraction/contracts/artifacts"),
        })
    }

    /// `$X402_POLICY_ARTIFACTS` if set, else `contracts/artifacts`.
    pub fn project() -> Self {
        let dir = std::env::var_os(ARTIFACTS_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("contracts/artifacts"));
        Self { dir }
    }

    /// Artifacts in any directory, e.g. vendored third-party builds (Safe, Biconomy) that are
    /// neither npm's nor ours.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn json(&self, name: &str) -> Result<serde_json::Value> {
        let path = self.dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Setup(format!("{}: {e} (run `npm ci` / `npm run compile`)", path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))
    }

    /// Creation bytecode of `<name>.json`, without constructor arguments (callers append them
    /// ABI-encoded). [`Error::Setup`] names the file when it is missing or has no bytecode.
    pub fn bytecode(&self, name: &str) -> Result<Bytes> {
        let json = self.json(name)?;
        let hex = json["bytecode"]
            .as_str()
            .ok_or_else(|| Error::Setup(format!("{name}: no bytecode")))?;
        Ok(Bytes::from(alloy::hex::decode(hex)?))
    }

    /// Whether the account in this directory is the pre-issue-11 one (ABI-encoded session signature).
    pub fn is_v1(&self) -> Result<bool> {
        let json = self.json("SessionKeyAccount")?;
        let abi = json["abi"].as_array().cloned().unwrap_or_default();
        Ok(!abi.iter().any(|f| f["name"] == "encodeGrant"))
    }
}
