//! Network presets: pointing every command at a real network is one flag plus URLs and keys.

use alloy::primitives::{Address, address};
use x402_aa::{ENTRY_POINT_V06, SIMPLE_ACCOUNT_FACTORY_V06};

/// Addresses a network needs for aa-native payments with session keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preset {
    pub(crate) name: &'static str,
    pub(crate) chain_id: u64,
    pub(crate) rpc_url: Option<&'static str>,
    pub(crate) bundler_url: Option<&'static str>,
    pub(crate) paymaster_url: Option<&'static str>,
    pub(crate) entry_point: Address,
    pub(crate) simple_account_factory: Address,
    pub(crate) settlement: Option<Address>,
    /// `SessionKeyAccountFactory`; not deployed on public networks yet (pass `--session-factory`).
    pub(crate) session_account_factory: Option<Address>,
    pub(crate) token: Option<(Address, &'static str, u8)>,
}

/// NERO mainnet, `eip155:1689` (addresses from NERO 402's documentation).
pub(crate) const NERO_MAINNET: Preset = Preset {
    name: "nero-mainnet",
    chain_id: 1689,
    rpc_url: Some("https://rpc.nerochain.io"),
    bundler_url: Some("https://bundler-mainnet.nerochain.io"),
    paymaster_url: Some("https://paymaster-mainnet.nerochain.io"),
    entry_point: ENTRY_POINT_V06,
    simple_account_factory: SIMPLE_ACCOUNT_FACTORY_V06,
    settlement: Some(address!("0x5eCfc64f2339992668f555918674B604F97B412D")),
    session_account_factory: None,
    token: Some((address!("0xff13a7a12fd485bc9687ff88d8ae1a6b655ab469"), "USDT", 6)),
};

/// NERO testnet, `eip155:689`.
pub(crate) const NERO_TESTNET: Preset = Preset {
    name: "nero-testnet",
    chain_id: 689,
    rpc_url: Some("https://rpc-testnet.nerochain.io"),
    bundler_url: Some("https://bundler-testnet.nerochain.io"),
    paymaster_url: Some("https://paymaster-testnet.nerochain.io"),
    entry_point: ENTRY_POINT_V06,
    simple_account_factory: SIMPLE_ACCOUNT_FACTORY_V06,
    settlement: Some(address!("0x925dbba44570683ac8da99be08bc5ece8cf5a8c6")),
    session_account_factory: None,
    token: Some((address!("0x9a2eabdecda3eae051bca75fbe71a3dbdb35f9d4"), "USDT", 6)),
};

/// The local devnet: addresses come from the running devnet's state file (`devnet up`).
pub(crate) const DEVNET: Preset = Preset {
    name: "devnet",
    chain_id: 31337,
    rpc_url: None,
    bundler_url: None,
    paymaster_url: None,
    entry_point: ENTRY_POINT_V06,
    simple_account_factory: SIMPLE_ACCOUNT_FACTORY_V06,
    settlement: None,
    session_account_factory: None,
    token: None,
};

pub(crate) fn preset(name: &str) -> Option<Preset> {
    [DEVNET, NERO_TESTNET, NERO_MAINNET].into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_findable_and_consistent() {
        for name in ["devnet", "nero-testnet", "nero-mainnet"] {
            let p = preset(name).unwrap();
            assert_eq!(p.entry_point, ENTRY_POINT_V06);
        }
        assert_eq!(preset("nero-mainnet").unwrap().chain_id, 1689);
        assert_eq!(preset("nero-testnet").unwrap().chain_id, 689);
        assert!(preset("mainnet").is_none());
    }
}
