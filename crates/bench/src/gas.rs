//! Gas per aa-native payment, exact from receipts on anvil: the same payment (approve + settle in
//! the account's batch call, same token, amount and merchant) from each kind of account, built by the SDK's own
//! `PaymentSigner` and sponsored by the devnet paymaster service.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use serde::Serialize;
use x402_aa::{
    ENTRY_POINT_V06, UserOperation,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_devnet::{Devnet, Included};
use x402_aa_paymaster::{PaymasterHandle, PaymasterService};
use x402_aa_rpc::PaymasterClient;
use x402_aa_session::{
    Scopes,
    accounts::{BiconomyOwnerAccount, KernelOwnerAccount, SafeOwnerAccount},
    per_day,
    signer::{OwnerAccount, PaidRequest, PaymentAccount, PaymentSigner, SessionAccount},
};

pub(crate) const API_KEY: &str = "bench";
pub(crate) const USD: u64 = 1_000_000;

/// One measured payment.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct GasFigure {
    /// `UserOperationEvent.actualGasUsed` (includes the op's preVerificationGas).
    pub(crate) actual_gas_used: u64,
    /// Gas of the whole `handleOps` transaction.
    pub(crate) handle_ops_gas: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BundleFigure {
    pub(crate) n: usize,
    pub(crate) handle_ops_gas: u64,
    pub(crate) handle_ops_gas_per_payment: u64,
    pub(crate) actual_gas_used_per_payment: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GasReport {
    pub(crate) simple_account_owner: GasFigure,
    pub(crate) session_account_owner: GasFigure,
    pub(crate) session_first: GasFigure,
    pub(crate) session_steady: GasFigure,
    pub(crate) session_first_of_life: GasFigure,
    pub(crate) bundles: Vec<BundleFigure>,
    /// Third-party accounts, owner-signed, steady state, each in its own batch encoding.
    pub(crate) kernel_owner: GasFigure,
    /// Kernel v2.4 with the KernelSessionValidator: a session key's first (enable) and
    /// steady-state payment.
    pub(crate) kernel_session_first: GasFigure,
    pub(crate) kernel_session_steady: GasFigure,
    pub(crate) safe_owner: GasFigure,
    /// Safe 1.4.1 with the SafeSessionModule (module and fallback handler), session key: first
    /// payment (enables the grant in-op) and steady state, beside `safe_owner`.
    pub(crate) safe_session_first: GasFigure,
    pub(crate) safe_session_steady: GasFigure,
    pub(crate) biconomy_owner: GasFigure,
    /// Biconomy v2 with the BiconomySessionModule: a session key's first (enable) and
    /// steady-state payment, beside `biconomy_owner`.
    pub(crate) biconomy_session_first: GasFigure,
    pub(crate) biconomy_session_steady: GasFigure,
    pub(crate) pre_verification_gas: u64,
    /// Gas of the owner's `revokeSession_ol(id)` transaction for an enabled session.
    pub(crate) revoke_gas: u64,
}

pub(crate) struct Bench {
    pub(crate) devnet: Devnet,
    pub(crate) paymaster: PaymasterHandle,
    pub(crate) merchant: Address,
    next_key: u64,
}

impl Bench {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let devnet = Devnet::spawn().await?;
        let mut config = x402_aa_stack::paymaster_config(&devnet, API_KEY);
        // The bench signs dozens of payloads per sender within seconds (the /verify load set);
        // the service's per-sender throttle is a production guard, not part of what is measured.
        config.policy.rate_limit_per_sender_per_minute = None;
        let paymaster = PaymasterService::new(config)?.bind("127.0.0.1:0".parse()?).await?;
        let merchant = devnet.keys.spare[6].address();
        // The merchant already holds the token, as a real merchant does: no first-balance write
        // inflates whichever scenario happens to pay it first.
        devnet.mint(merchant, U256::from(USD)).await?;
        Ok(Self { devnet, paymaster, merchant, next_key: 1 })
    }

    fn fresh_key(&mut self) -> PrivateKeySigner {
        // Deterministic keys 2, 3, 4, … (far below the curve order): the same accounts every run.
        self.next_key += 1;
        PrivateKeySigner::from_bytes(&B256::from(U256::from(self.next_key))).expect("valid key")
    }

    pub(crate) fn accepted(&self, amount: u64) -> serde_json::Value {
        let a = self.devnet.addresses;
        let req = AaNativeRequirements {
            chain_id: self.devnet.chain_id(),
            amount: U256::from(amount),
            pay_to: self.merchant,
            asset: a.token,
            max_timeout_seconds: 60,
            extra: Some(AaNativeExtra {
                settlement_contract: a.settlement,
                entry_point: ENTRY_POINT_V06,
            }),
        };
        serde_json::to_value(req.to_wire()).unwrap_or_default()
    }

    pub(crate) async fn signer<A: PaymentAccount>(
        &self,
        account: A,
    ) -> anyhow::Result<PaymentSigner<A>> {
        let client = PaymasterClient::new(&self.paymaster.url())?;
        // Each agent its own client, as the SDK builds it (its reads batched, never another
        // agent's).
        let provider = x402_aa_rpc::coalescing_provider(
            self.devnet.rpc_url().parse()?,
            x402_aa_rpc::DEFAULT_TIMEOUT,
        );
        Ok(PaymentSigner::new(account, provider).await?.paymaster(client, API_KEY))
    }

    /// Signs one payment and submits it alone; returns its gas.
    pub(crate) async fn pay<A: PaymentAccount>(
        &self,
        signer: &PaymentSigner<A>,
        n: u64,
    ) -> anyhow::Result<GasFigure> {
        let op = self.sign(signer, n).await?;
        let included = self.submit(&[op]).await?;
        figure(&included)
    }

    /// Funds `account`, pays three times (the first deploys it through initCode) and returns the
    /// third payment's gas: the steady state of an owner-signed account.
    async fn steady_owner<A: PaymentAccount>(
        &self,
        account: A,
        n: u64,
    ) -> anyhow::Result<GasFigure> {
        self.devnet.mint(account.sender(), U256::from(100 * USD)).await?;
        let signer = self.signer(account).await?;
        self.pay(&signer, n).await?;
        self.pay(&signer, n + 1).await?;
        self.pay(&signer, n + 2).await
    }

    pub(crate) async fn sign<A: PaymentAccount>(
        &self,
        signer: &PaymentSigner<A>,
        n: u64,
    ) -> anyhow::Result<UserOperation> {
        let request =
            PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1/bench/{n}") };
        let signed = signer.pay(&self.accepted(USD / 100), &request).await?;
        // Nothing reports settlement back in the bench; free the nonce lane for the next payment.
        signer.failed(&signed, "bench")?;
        Ok(signed.payload.payload.user_op)
    }

    pub(crate) async fn submit(&self, ops: &[UserOperation]) -> anyhow::Result<Included> {
        let included = self
            .devnet
            .handle_ops(ops, self.devnet.keys.bundler.address())
            .await?
            .into_included()?;
        anyhow::ensure!(
            included.events.len() == ops.len() && included.all_succeeded(),
            "payment failed: {:?}",
            included.revert_reason_strings()
        );
        Ok(included)
    }

    /// The grant every measured session has: 1000 USDT a day, 1 USDT a payment, one merchant.
    fn scopes(&self) -> anyhow::Result<Scopes> {
        Ok(Scopes::new()
            .spend_cap("1000 USDT".parse()?, per_day())
            .per_payment_max("1 USDT".parse()?)
            .merchants([self.merchant])
            .valid_for(Duration::from_secs(7 * 86_400))
            .only_paymaster(self.devnet.addresses.verifying_paymaster))
    }

    /// A Kernel v2.4 account, Biconomy v2 account or 1-of-1 Safe with our session validator or
    /// module installed and a session under [`Bench::scopes`], funded with tokens.
    pub(crate) async fn module_session_account(
        &mut self,
        kind: x402_aa::accounts::AccountKind,
    ) -> anyhow::Result<SessionAccount> {
        use x402_aa::accounts::AccountKind;
        let owner = self.fresh_key();
        let session_key = self.fresh_key();
        let scopes = self.scopes()?;
        let (devnet, salt, mint) = (&self.devnet, B256::repeat_byte(9), U256::from(1_000 * USD));
        let account = match kind {
            AccountKind::Kernel => {
                x402_aa_stack::kernel_session_account(
                    devnet,
                    &owner,
                    session_key,
                    &scopes,
                    salt,
                    mint,
                )
                .await?
            }
            AccountKind::Biconomy => {
                x402_aa_stack::biconomy_session_account(
                    devnet,
                    &owner,
                    session_key,
                    &scopes,
                    salt,
                    mint,
                )
                .await?
            }
            AccountKind::Safe => {
                x402_aa_stack::safe_session_account(
                    devnet,
                    &owner,
                    session_key,
                    &scopes,
                    salt,
                    mint,
                )
                .await?
            }
            other => anyhow::bail!("{other:?} hosts no session module"),
        };
        Ok(account)
    }

    /// A session account with a 1000 USDT/day grant; deployed through the factory unless
    /// `counterfactual`, funded with tokens either way.
    pub(crate) async fn session_account(
        &mut self,
        counterfactual: bool,
    ) -> anyhow::Result<(PrivateKeySigner, SessionAccount)> {
        let owner = self.fresh_key();
        let session_key = self.fresh_key();
        let scopes = self.scopes()?;
        let account = x402_aa_stack::session_account(
            &self.devnet,
            &owner,
            session_key,
            &scopes,
            B256::repeat_byte(9),
            !counterfactual,
            U256::from(1_000 * USD),
        )
        .await?;
        Ok((owner, account))
    }
}

fn figure(included: &Included) -> anyhow::Result<GasFigure> {
    let event = included.events.first().ok_or_else(|| anyhow::anyhow!("no UserOperationEvent"))?;
    Ok(GasFigure {
        actual_gas_used: event.actualGasUsed.to(),
        handle_ops_gas: included.receipt.gas_used,
    })
}

pub(crate) async fn run(bench: &mut Bench) -> anyhow::Result<GasReport> {
    let a = bench.devnet.addresses;

    // 1. Canonical SimpleAccount, owner-signed, deployed (its first op deployed it), steady state.
    let owner = bench.fresh_key();
    let simple = bench.devnet.simple_account_address(owner.address(), U256::ZERO).await?;
    bench.devnet.mint(simple, U256::from(100 * USD)).await?;
    let simple =
        bench.signer(OwnerAccount::simple_account(owner, simple, a.token, a.settlement)).await?;
    bench.pay(&simple, 1).await?;
    bench.pay(&simple, 2).await?;
    let simple_account_owner = bench.pay(&simple, 3).await?;

    // 2. Our account, owner-signed, steady state.
    let (owner, session) = bench.session_account(false).await?;
    let owner_of_session = owner.clone();
    let ours = OwnerAccount {
        kind: x402_aa::accounts::AccountKind::SessionKeyAccount,
        owner,
        sender: session.sender(),
        token: a.token,
        settlement: a.settlement,
        account_factory: a.session_account_factory,
        salt: U256::ZERO,
    };
    let ours = bench.signer(ours).await?;
    bench.pay(&ours, 10).await?;
    bench.pay(&ours, 11).await?;
    let session_account_owner = bench.pay(&ours, 12).await?;

    // 3 and 4. Same account, session key: first payment enables the grant, then steady state.
    let session = bench.signer(session).await?;
    let session_first = bench.pay(&session, 20).await?;
    bench.pay(&session, 21).await?;
    let session_steady = bench.pay(&session, 22).await?;

    // The owner revokes that session in one transaction.
    let revoke_gas = revoke(bench, &owner_of_session, session.account()).await?;

    // 5. First payment of an account's life: initCode deploy + enable + pay.
    let (_, fresh) = bench.session_account(true).await?;
    let fresh = bench.signer(fresh).await?;
    let session_first_of_life = bench.pay(&fresh, 30).await?;

    // 6. Bundles of steady-state session payments from different accounts.
    let mut signers = Vec::new();
    for i in 0..20u64 {
        let (_, account) = bench.session_account(false).await?;
        let signer = bench.signer(account).await?;
        bench.pay(&signer, 100 + i).await?;
        signers.push(signer);
    }
    let mut bundles = Vec::new();
    for n in [1usize, 5, 20] {
        let mut ops = Vec::new();
        for (i, signer) in signers.iter().take(n).enumerate() {
            ops.push(bench.sign(signer, 1_000 * n as u64 + i as u64).await?);
        }
        let included = bench.submit(&ops).await?;
        let actual: u64 = included.events.iter().map(|e| e.actualGasUsed.to::<u64>()).sum();
        bundles.push(BundleFigure {
            n,
            handle_ops_gas: included.receipt.gas_used,
            handle_ops_gas_per_payment: included.receipt.gas_used / n as u64,
            actual_gas_used_per_payment: actual / n as u64,
        });
    }
    // 7–9. Kernel v2.4, Safe 1.4.1 + Safe4337Module (1-of-1) and Biconomy v2, owner-signed,
    // steady state: the same payment in each account's own batch encoding.
    let kernel = KernelOwnerAccount::new(bench.fresh_key(), a.token, a.settlement, U256::ZERO);
    let kernel_owner = bench.steady_owner(kernel, 40).await?;
    // 10 and 11. Kernel with the KernelSessionValidator, session key: first payment (enables the
    // grant) and steady state, beside 7.
    let kernel_session =
        bench.module_session_account(x402_aa::accounts::AccountKind::Kernel).await?;
    let kernel_session = bench.signer(kernel_session).await?;
    let kernel_session_first = bench.pay(&kernel_session, 70).await?;
    bench.pay(&kernel_session, 71).await?;
    let kernel_session_steady = bench.pay(&kernel_session, 72).await?;
    let safe = SafeOwnerAccount::single_owner(
        bench.fresh_key(),
        bench.devnet.safe,
        a.token,
        a.settlement,
        U256::ZERO,
    )?;
    let safe_owner = bench.steady_owner(safe, 50).await?;
    let biconomy = biconomy(bench).await?;
    // 14 and 15. Safe with the SafeSessionModule, session key: first payment (enables the grant)
    // and steady state, beside 8.
    let safe_session = bench.module_session_account(x402_aa::accounts::AccountKind::Safe).await?;
    let safe_session = bench.signer(safe_session).await?;
    let safe_session_first = bench.pay(&safe_session, 80).await?;
    bench.pay(&safe_session, 81).await?;
    let safe_session_steady = bench.pay(&safe_session, 82).await?;

    Ok(GasReport {
        kernel_owner,
        kernel_session_first,
        kernel_session_steady,
        safe_owner,
        biconomy_owner: biconomy.owner,
        biconomy_session_first: biconomy.session_first,
        biconomy_session_steady: biconomy.session_steady,
        safe_session_first,
        safe_session_steady,
        simple_account_owner,
        session_account_owner,
        session_first,
        session_steady,
        session_first_of_life,
        bundles,
        pre_verification_gas: x402_aa_session::signer::GasDefaults::default().pre_verification_gas,
        revoke_gas,
    })
}

/// Biconomy v2's rows: the owner's payment and a session key's, each on its own account.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BiconomyFigures {
    pub(crate) owner: GasFigure,
    pub(crate) session_first: GasFigure,
    pub(crate) session_steady: GasFigure,
}

/// Scenario 9, Biconomy v2 owner-signed (ECDSA module) in steady state, and scenarios 12 and 13,
/// Biconomy with the BiconomySessionModule, a session key's first payment (enables the grant)
/// and steady state.
pub(crate) async fn biconomy(bench: &mut Bench) -> anyhow::Result<BiconomyFigures> {
    let a = bench.devnet.addresses;
    let biconomy = BiconomyOwnerAccount::new(
        bench.fresh_key(),
        bench.devnet.biconomy.deployment(),
        a.token,
        a.settlement,
        U256::ZERO,
    );
    let owner = bench.steady_owner(biconomy, 60).await?;
    let session = bench.module_session_account(x402_aa::accounts::AccountKind::Biconomy).await?;
    let session = bench.signer(session).await?;
    let session_first = bench.pay(&session, 80).await?;
    bench.pay(&session, 81).await?;
    let session_steady = bench.pay(&session, 82).await?;
    Ok(BiconomyFigures { owner, session_first, session_steady })
}

/// Gas of `revokeSession_ol(id)` sent by the account's owner from its own funded address.
async fn revoke(
    bench: &Bench,
    owner: &PrivateKeySigner,
    session: &SessionAccount,
) -> anyhow::Result<u64> {
    use alloy::{
        network::{EthereumWallet, TransactionBuilder},
        providers::{Provider, ProviderBuilder},
        rpc::types::TransactionRequest,
        sol_types::SolCall,
    };
    bench.devnet.fund(owner.address(), U256::from(10u64.pow(17))).await?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner.clone()))
        .connect_http(bench.devnet.rpc_url().parse()?);
    let call =
        x402_aa_contracts::SessionKeyAccount::revokeSession_olCall { id: session.file.session_id };
    let tx =
        TransactionRequest::default().with_to(session.file.account).with_input(call.abi_encode());
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "revokeSession_ol reverted");
    Ok(receipt.gas_used)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13's goal, measured as `make bench` measures rows 8 and 13: a Safe session payment
    /// costs at most 1.15 times the Safe owner payment (one-op sponsored `handleOps`, steady state).
    #[tokio::test]
    async fn safe_session_payment_is_within_the_goal() -> anyhow::Result<()> {
        let mut bench = Bench::new().await?;
        let a = bench.devnet.addresses;
        let safe = SafeOwnerAccount::single_owner(
            bench.fresh_key(),
            bench.devnet.safe,
            a.token,
            a.settlement,
            U256::ZERO,
        )?;
        let owner = bench.steady_owner(safe, 50).await?;
        let session = bench.module_session_account(x402_aa::accounts::AccountKind::Safe).await?;
        let session = bench.signer(session).await?;
        let first = bench.pay(&session, 80).await?;
        bench.pay(&session, 81).await?;
        let steady = bench.pay(&session, 82).await?;
        let ratio = |f: GasFigure| f.handle_ops_gas as f64 / owner.handle_ops_gas as f64;
        eprintln!(
            "Safe owner {} gas; session first {} ({:.3}x), steady {} ({:.3}x)",
            owner.handle_ops_gas,
            first.handle_ops_gas,
            ratio(first),
            steady.handle_ops_gas,
            ratio(steady)
        );
        assert!(ratio(steady) <= 1.15, "session steady {:.3}x the owner payment", ratio(steady));
        Ok(())
    }
}
