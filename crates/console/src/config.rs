//! What the console needs to know about the network and the owner.

use std::{net::SocketAddr, path::PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use x402_aa_session::TokenInfo;

use crate::ConsoleError;

/// Where the console reads and writes, and who it acts for. The same settings serve the devnet
/// and a real network: only the RPC URL and the addresses differ.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The chain's JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// Refuse to start when the RPC answers with another chain id.
    pub chain_id: Option<u64>,
    /// The EntryPoint written into the session files of grants made here (v0.6 by default).
    pub entry_point: Address,
    /// The `SessionKeyAccountFactory`: the owner's account is its `(owner, salt)` account, and
    /// grants for a counterfactual account record it so the first payment deploys it.
    pub session_account_factory: Option<Address>,
    /// Where payments settle; its `ReceiptLog` events are the spend chart.
    pub settlement: Address,
    /// The payment token; symbol and decimals are read from the chain when not given.
    pub token: Address,
    /// Symbol and decimals of `token`, to skip reading them from the chain; ignored when its
    /// address is not `token`.
    pub token_info: Option<TokenInfo>,
    /// Grants made in the console require this paymaster to sponsor every op (none = any
    /// paymaster).
    pub paymaster: Option<Address>,
    /// Signs grants and sends owner transactions. Never read from the page.
    pub owner_key: Option<PrivateKeySigner>,
    /// Whose account the console manages when the owner key is elsewhere (signatures are then
    /// pasted into the page).
    pub owner: Option<Address>,
    /// A funded key that submits owner-signed pauses and revocations (`…WithSignature`) when the
    /// owner key is not here.
    pub relayer_key: Option<PrivateKeySigner>,
    /// Session files to show, as `session list` reads them.
    pub sessions_dir: Option<PathBuf>,
    /// The console's own files: grants it made (with their justification), their session files
    /// and the generated session keys (0600).
    pub data_dir: PathBuf,
    /// First block to read receipts from (a real network's settlement contract may be old).
    pub from_block: u64,
    /// Where [`serve`](crate::serve) listens; port 0 picks a free port.
    pub bind: SocketAddr,
}

impl ConsoleConfig {
    /// A console for `rpc_url` on localhost (any free port), reading receipts from block 0; set
    /// the owner key or address and the other fields as needed.
    pub fn new(
        rpc_url: impl Into<String>,
        settlement: Address,
        token: Address,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            chain_id: None,
            entry_point: x402_aa::ENTRY_POINT_V06,
            session_account_factory: None,
            settlement,
            token,
            token_info: None,
            paymaster: None,
            owner_key: None,
            owner: None,
            relayer_key: None,
            sessions_dir: None,
            data_dir: data_dir.into(),
            from_block: 0,
            bind: ([127, 0, 0, 1], 0).into(),
        }
    }

    /// The owner's address: the key's, or the one given for signing elsewhere.
    pub fn owner_address(&self) -> Option<Address> {
        self.owner_key.as_ref().map(PrivateKeySigner::address).or(self.owner)
    }
}

/// A private key from a file holding its hex (the way the owner key reaches the console without
/// ever being typed into the page). A file others may read is refused.
pub fn load_key_file(path: &std::path::Path) -> Result<PrivateKeySigner, ConsoleError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(ConsoleError::io(format!("key file {}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(ConsoleError::BadInput(format!(
                "key file {} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(ConsoleError::io(format!("key file {}", path.display())))?;
    text.trim().parse().map_err(|_| {
        ConsoleError::BadInput(format!("{} does not hold a hex private key", path.display()))
    })
}
