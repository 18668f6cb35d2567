//! Everything a client or a merchant needs to use a running [`LocalStack`](crate::LocalStack):
//! URLs, contracts, tokens (and who mints them), the paid API's prices per scheme, and the
//! funded test keys. `devnet up` prints it as text ([`Display`](std::fmt::Display)) or JSON
//! (serde, camelCase).

use std::fmt;

use alloy::primitives::{Address, B256};
use serde::Serialize;

/// A running stack, described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackInfo {
    /// The devnet's EIP-155 chain id.
    pub chain_id: u64,
    /// CAIP-2, as x402 names networks (`eip155:31337`).
    pub network: String,
    /// The devnet's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The deployed contracts.
    pub contracts: ContractsInfo,
    /// The tokens payments move, one per scheme.
    pub tokens: Vec<TokenInfo>,
    /// Our facilitator.
    pub facilitator: FacilitatorInfo,
    /// The paymaster service.
    pub paymaster: PaymasterInfo,
    /// The example paid API.
    pub paid_api: PaidApiInfo,
    /// Anvil's well-known test keys, funded (never use them anywhere else).
    pub funded_keys: Vec<FundedKey>,
}

/// The devnet's contracts a client or merchant addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractsInfo {
    /// EntryPoint v0.6 at its canonical address.
    pub entry_point: Address,
    /// The canonical SimpleAccountFactory (owner-key accounts).
    pub simple_account_factory: Address,
    /// Our SessionKeyAccountFactory (accounts that accept session keys).
    pub session_account_factory: Address,
    /// The settlement contract aa-native payments call `settle` on.
    pub settlement: Address,
    /// The VerifyingPaymaster the paymaster service signs for.
    pub verifying_paymaster: Address,
    /// Our `KernelSessionValidator`: session keys on Kernel v2.4 accounts.
    pub kernel_session_validator: Address,
    /// Our `SafeSessionModule`: session keys on Safe 1.4.1 accounts.
    pub safe_session_module: Address,
    /// Our `BiconomySessionModule`: session keys on Biconomy v2 accounts.
    pub biconomy_session_module: Address,
}

/// A token payments move on the devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// `USDT` or `USDC`.
    pub symbol: String,
    /// The ERC-20 contract.
    pub address: Address,
    /// Decimals of one whole token (6 for both).
    pub decimals: u8,
    /// The x402 scheme paid in it (`aa-native` or `exact`).
    pub scheme: String,
    /// EIP-712 domain `name`/`version` of an EIP-3009 token (`extra` of `exact` requirements).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip712_name: Option<String>,
    /// The EIP-712 domain `version` that goes with `eip712_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip712_version: Option<String>,
    /// Who may `mint(to, amount)` it, and that key (an anvil test key).
    pub minter: Address,
    /// The minter's private key (an anvil test key, public knowledge).
    pub minter_key: B256,
}

/// Where our facilitator answers, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorInfo {
    /// Base URL of `/verify`, `/settle` and `/supported`.
    pub url: String,
    /// x402 schemes it verifies and settles on this network.
    pub schemes: Vec<String>,
    /// Addresses that send its transactions (gas payers).
    pub signers: Vec<Address>,
}

/// Where the paymaster service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymasterInfo {
    /// `pm_sponsor_userop` for the VerifyingPaymaster.
    pub url: String,
    /// The API key it accepts (`"local"` unless the stack was started with another).
    pub api_key: String,
}

/// The example paid API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidApiInfo {
    /// The paid route's full URL.
    pub url: String,
    /// Who its payments go to (`payTo`).
    pub merchant: Address,
    /// What one call costs, per scheme; the client picks one.
    pub prices: Vec<PriceInfo>,
}

/// One way to pay the paid route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceInfo {
    /// The x402 scheme (`aa-native` or `exact`).
    pub scheme: String,
    /// As people write it (`0.01 USDT`).
    pub price: String,
    /// The token it is paid in.
    pub asset: Address,
    /// Atomic units.
    pub amount: String,
}

/// A funded anvil test key and its two counterfactual accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FundedKey {
    /// The key's address (the accounts' owner).
    pub address: Address,
    /// The private key (an anvil test key, public knowledge).
    pub private_key: B256,
    /// Its SessionKeyAccount (salt 0): the owner grants sessions from it (aa-native).
    pub session_account: Address,
    /// Its SimpleAccount (canonical factory, salt 0): pays aa-native with the owner key.
    pub simple_account: Address,
    /// What the key and its accounts hold.
    pub holdings: Vec<Holding>,
}

/// One balance [`fund_devnet_keys`](crate::fund_devnet_keys) put in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    /// Who holds it: `key` (the key's own address, which pays `exact`), `sessionAccount` or
    /// `simpleAccount` (which pay aa-native).
    pub holder: String,
    /// The holder's address.
    pub address: Address,
    /// The token's address (one of [`StackInfo::tokens`]).
    pub token: Address,
    /// Atomic units.
    pub amount: String,
    /// As people write it (`100 USDT`).
    pub display: String,
}

impl fmt::Display for StackInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.contracts;
        writeln!(f, "devnet up (chain {}, x402 network {})", self.chain_id, self.network)?;
        writeln!(f, "  rpc                        {}", self.rpc_url)?;
        writeln!(
            f,
            "  facilitator                {}  schemes: {}  signers: {}",
            self.facilitator.url,
            self.facilitator.schemes.join(", "),
            join(&self.facilitator.signers)
        )?;
        writeln!(
            f,
            "  paymaster (pm_sponsor_userop) {}  api key: {}",
            self.paymaster.url, self.paymaster.api_key
        )?;
        writeln!(
            f,
            "  paid API                   {}  (pays {})",
            self.paid_api.url, self.paid_api.merchant
        )?;
        for p in &self.paid_api.prices {
            writeln!(f, "    {:<10} {} ({} units of {})", p.scheme, p.price, p.amount, p.asset)?;
        }
        for (name, address) in [
            ("EntryPoint v0.6", c.entry_point),
            ("SimpleAccountFactory", c.simple_account_factory),
            ("SessionKeyAccountFactory", c.session_account_factory),
            ("SettlementContract", c.settlement),
            ("VerifyingPaymaster", c.verifying_paymaster),
            ("KernelSessionValidator", c.kernel_session_validator),
            ("SafeSessionModule", c.safe_session_module),
            ("BiconomySessionModule", c.biconomy_session_module),
        ] {
            writeln!(f, "  {name:<26} {address}")?;
        }
        for t in &self.tokens {
            let domain = match (&t.eip712_name, &t.eip712_version) {
                (Some(n), Some(v)) => format!(", EIP-712 {n:?} v{v}"),
                _ => String::new(),
            };
            writeln!(
                f,
                "  {:<26} {}  ({} decimals, {}{domain}; mint(to, amount) from {} key {})",
                format!("{} ({})", t.symbol, t.scheme),
                t.address,
                t.decimals,
                t.scheme,
                t.minter,
                t.minter_key
            )?;
        }
        writeln!(f, "  funded keys (anvil test keys, never use elsewhere):")?;
        for k in &self.funded_keys {
            writeln!(f, "    {}  {}", k.address, k.private_key)?;
            writeln!(
                f,
                "      session account {}  simple account {}",
                k.session_account, k.simple_account
            )?;
            let holdings: Vec<String> =
                k.holdings.iter().map(|h| format!("{}: {}", h.holder, h.display)).collect();
            writeln!(f, "      holds {}", holdings.join(", "))?;
        }
        Ok(())
    }
}

fn join(addresses: &[Address]) -> String {
    addresses.iter().map(Address::to_string).collect::<Vec<_>>().join(", ")
}
