//! `account address|create|balance`: the owner's SessionKeyAccount or Kernel account.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use clap::Subcommand;
use serde_json::json;
use x402_aa_contracts::{SessionKeyAccountFactory, TestStablecoin};

use x402_aa::accounts::{
    kernel,
    safe::{SafeConfig, SafeDeployment},
};

use super::session::{SessionAccount, biconomy_account, kernel_account, safe_account};
use crate::{Cli, chain::Chain, output::Out};

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// The counterfactual address of an owner's account (SessionKeyAccount, or `--account kernel`).
    Address {
        #[arg(long)]
        owner: Address,
        #[arg(long, default_value_t = 0)]
        salt: u64,
        #[arg(long, value_enum, default_value_t = SessionAccount::SessionKeyAccount)]
        account: SessionAccount,
    },
    /// Deploy the owner's account (the first payment can also deploy a SessionKeyAccount; a
    /// Kernel account is deployed by `session grant --account kernel` too).
    Create {
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
        #[arg(long, default_value_t = 0)]
        salt: u64,
        #[arg(long, value_enum, default_value_t = SessionAccount::SessionKeyAccount)]
        account: SessionAccount,
    },
    /// Token and native balance of an account.
    Balance { account: Address },
}

pub(crate) async fn account(cli: &Cli, out: &Out, command: &AccountCommand) -> anyhow::Result<()> {
    let chain = Chain::resolve(cli)?;
    match command {
        AccountCommand::Address { owner, salt, account } => {
            let provider = chain.provider(None)?;
            let address = match account {
                SessionAccount::SessionKeyAccount => {
                    SessionKeyAccountFactory::new(chain.session_factory()?, &provider)
                        .getAddress(*owner, U256::from(*salt))
                        .call()
                        .await?
                }
                SessionAccount::Kernel => kernel::account_address(*owner, U256::from(*salt)),
                SessionAccount::Biconomy => {
                    chain.biconomy.account_address(*owner, U256::from(*salt))
                }
                SessionAccount::Safe => SafeDeployment::CANONICAL
                    .account_address(&SafeConfig::single_owner(*owner, U256::from(*salt)))?,
            };
            let deployed = !provider.get_code_at(address).await?.is_empty();
            out.result(
                format!("{address} ({})", if deployed { "deployed" } else { "not deployed yet" }),
                json!({ "account": address, "deployed": deployed }),
            );
        }
        AccountCommand::Create { owner_key, salt, account: SessionAccount::Kernel } => {
            let provider = chain.provider(Some(owner_key))?;
            let _spinner = out.spinner("deploying the Kernel account");
            let address = kernel_account(&provider, owner_key, U256::from(*salt)).await?;
            out.result(
                format!("Kernel account {address} deployed"),
                json!({ "account": address, "kind": "kernel" }),
            );
        }
        AccountCommand::Create { owner_key, salt, account: SessionAccount::Biconomy } => {
            let provider = chain.provider(Some(owner_key))?;
            let _spinner = out.spinner("deploying the Biconomy account");
            let address = biconomy_account(&chain, &provider, owner_key, *salt).await?;
            out.result(
                format!("Biconomy account {address} deployed"),
                json!({ "account": address, "kind": "biconomy" }),
            );
        }
        AccountCommand::Create { owner_key, salt, account: SessionAccount::Safe } => {
            let provider = chain.provider(Some(owner_key))?;
            let _spinner = out.spinner("deploying the Safe");
            let address = safe_account(&provider, owner_key, U256::from(*salt)).await?;
            out.result(
                format!("Safe {address} deployed"),
                json!({ "account": address, "kind": "safe" }),
            );
        }
        AccountCommand::Create { owner_key, salt, account: SessionAccount::SessionKeyAccount } => {
            let provider = chain.provider(Some(owner_key))?;
            let factory_address = chain.session_factory()?;
            let factory = SessionKeyAccountFactory::new(factory_address, &provider);
            let address = factory.getAddress(owner_key.address(), U256::from(*salt)).call().await?;
            let _spinner = out.spinner("deploying account");
            let call = SessionKeyAccountFactory::createAccountCall {
                owner: owner_key.address(),
                salt: U256::from(*salt),
            };
            let tx = TransactionRequest::default()
                .with_from(owner_key.address())
                .with_to(factory_address)
                .with_input(call.abi_encode());
            let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
            anyhow::ensure!(receipt.status(), "createAccount reverted");
            out.result(
                format!("account {address} deployed (tx {})", receipt.transaction_hash),
                json!({ "account": address, "tx": receipt.transaction_hash }),
            );
        }
        AccountCommand::Balance { account } => {
            let provider = chain.provider(None)?;
            let token = chain.token()?;
            let balance =
                TestStablecoin::new(token.address, &provider).balanceOf(*account).call().await?;
            let native = provider.get_balance(*account).await?;
            out.result(
                format!("{account}: {} ({} wei native)", token.format(balance), native),
                json!({ "account": account, "token": token.address, "balance": balance.to_string(), "native": native.to_string() }),
            );
        }
    }
    Ok(())
}
