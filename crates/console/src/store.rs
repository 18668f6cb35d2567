//! The grants the console made, with the owner's justification: a small JSON file in the data
//! directory, next to each grant's session file and (when the console generated it) its 0600
//! session key, which the owner hands to the agent.

use std::path::{Path, PathBuf};

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use x402_aa_session::SessionFile;

use crate::ConsoleError;

/// The file in the data directory that lists the console's grants.
pub const GRANTS_FILE: &str = "grants.json";

/// One grant made in the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredGrant {
    /// The session the grant created.
    pub session_id: B256,
    /// Why the owner granted it, as written in the form.
    pub justification: String,
    /// Unix seconds (chain time) of the grant.
    pub granted_at: u64,
    /// The session file written for the grant, which the agent loads.
    pub session_file: PathBuf,
    /// Present when the console generated the session key.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct GrantsDocument {
    version: u32,
    grants: Vec<StoredGrant>,
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    grants: Vec<StoredGrant>,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> Result<Self, ConsoleError> {
        std::fs::create_dir_all(dir.join("sessions"))
            .map_err(ConsoleError::io(format!("data directory {}", dir.display())))?;
        let path = dir.join(GRANTS_FILE);
        let grants = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str::<GrantsDocument>(&text)
                    .map_err(|e| ConsoleError::BadInput(format!("{}: {e}", path.display())))?
                    .grants
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ConsoleError::io(path.display().to_string())(e)),
        };
        Ok(Self { dir: dir.to_owned(), grants })
    }

    pub(crate) fn session_path(&self, id: B256) -> PathBuf {
        self.dir.join("sessions").join(format!("{id}.json"))
    }

    pub(crate) fn key_path(&self, id: B256) -> PathBuf {
        self.dir.join("sessions").join(format!("{id}.key"))
    }

    /// Records a grant whose session file (and key) are already written; the list is replaced
    /// atomically, so a crash leaves the old list or the new one.
    pub(crate) fn add(&mut self, grant: StoredGrant) -> Result<(), ConsoleError> {
        self.grants.retain(|g| g.session_id != grant.session_id);
        self.grants.push(grant);
        let doc = GrantsDocument { version: 1, grants: self.grants.clone() };
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let path = self.dir.join(GRANTS_FILE);
        let tmp = self.dir.join(format!("{GRANTS_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(ConsoleError::io(tmp.display().to_string()))?;
        std::fs::rename(&tmp, &path).map_err(ConsoleError::io(path.display().to_string()))
    }

    /// The console's grants and the session files of `sessions_dir`, each once.
    pub(crate) fn sessions(
        &self,
        sessions_dir: Option<&Path>,
    ) -> Vec<(SessionFile, Option<StoredGrant>, PathBuf)> {
        let mut out: Vec<(SessionFile, Option<StoredGrant>, PathBuf)> = Vec::new();
        for grant in &self.grants {
            match SessionFile::load(&grant.session_file) {
                Ok(file) => out.push((file, Some(grant.clone()), grant.session_file.clone())),
                Err(e) => {
                    tracing::warn!(target: "console", "{}: {e}", grant.session_file.display())
                }
            }
        }
        if let Some(dir) = sessions_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut paths: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                // Not every file there is a session file (keys, ledgers): skip what is not.
                let Ok(file) = SessionFile::load(&path) else { continue };
                if out.iter().all(|(f, _, _)| f.session_id != file.session_id) {
                    out.push((file, None, path));
                }
            }
        }
        out
    }
}
