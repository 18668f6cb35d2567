//! `TestEip3009Token`: USDC-style EIP-3009 authorizations (FiatTokenV2_2's ABI and rules),
//! signed with alloy's EIP-712 support and submitted by a relayer.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{DynProvider, Provider, ext::AnvilApi},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::{Signature, SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{Eip712Domain, SolCall, SolEvent, SolStruct, eip712_domain},
};
use x402_aa_contracts::TestEip3009Token::{
    self, TestEip3009TokenErrors as TokenError, TestEip3009TokenInstance,
};
use x402_aa_devnet::{Devnet, Error};

use crate::common::USD;

sol! {
    /// EIP-3009's signed structs, as FiatTokenV2_2 hashes them.
    #[derive(Debug)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    #[derive(Debug)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    #[derive(Debug)]
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }
}

type Token<'a> = TestEip3009TokenInstance<&'a DynProvider>;

fn domain(devnet: &Devnet) -> Eip712Domain {
    eip712_domain! {
        name: "Devnet USD Coin",
        version: "2",
        chain_id: devnet.chain_id(),
        verifying_contract: devnet.addresses.eip3009_token,
    }
}

fn token(devnet: &Devnet) -> Token<'_> {
    TestEip3009Token::new(devnet.addresses.eip3009_token, devnet.provider())
}

fn nonce(tag: &str) -> B256 {
    keccak256(format!("eip3009 test nonce {tag}"))
}

fn sign(signer: &PrivateKeySigner, hash: B256) -> Signature {
    signer.sign_hash_sync(&hash).expect("local signing")
}

/// `value` from `from` to `to`, valid in `(valid_after, valid_before)`.
fn authorization(
    from: Address,
    to: Address,
    value: u64,
    valid_after: u64,
    valid_before: u64,
    nonce: B256,
) -> TransferWithAuthorization {
    TransferWithAuthorization {
        from,
        to,
        value: U256::from(value),
        validAfter: U256::from(valid_after),
        validBefore: U256::from(valid_before),
        nonce,
    }
}

/// `transferWithAuthorization(…, v, r, s)`.
fn with_vrs(auth: &TransferWithAuthorization, sig: &Signature) -> Vec<u8> {
    TestEip3009Token::transferWithAuthorization_0Call {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.validAfter,
        validBefore: auth.validBefore,
        nonce: auth.nonce,
        v: 27 + u8::from(sig.v()),
        r: sig.r().into(),
        s: sig.s().into(),
    }
    .abi_encode()
}

/// `transferWithAuthorization(…, bytes signature)`.
fn with_bytes(auth: &TransferWithAuthorization, sig: &Signature) -> Vec<u8> {
    TestEip3009Token::transferWithAuthorization_1Call {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.validAfter,
        validBefore: auth.validBefore,
        nonce: auth.nonce,
        signature: Bytes::from(sig.as_bytes()),
    }
    .abi_encode()
}

fn tx(devnet: &Devnet, from: Address, input: Vec<u8>) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(from)
        .with_to(devnet.addresses.eip3009_token)
        .with_input(input)
}

/// The token's custom error for `input` sent by `from` (simulated with `eth_call`).
async fn refusal(devnet: &Devnet, from: Address, input: Vec<u8>) -> TokenError {
    let err = devnet
        .provider()
        .call(tx(devnet, from, input))
        .await
        .expect_err("the token must refuse this call");
    let payload = err.as_error_resp().unwrap_or_else(|| panic!("not a revert: {err}"));
    payload
        .as_decoded_interface_error::<TokenError>()
        .unwrap_or_else(|| panic!("not a TestEip3009Token error: {payload:?}"))
}

/// Sends `input` from `from` and returns the mined receipt (an error if it reverted).
async fn submit(
    devnet: &Devnet,
    from: Address,
    input: Vec<u8>,
) -> Result<TransactionReceipt, Error> {
    devnet.send("TestEip3009Token authorization", tx(devnet, from, input)).await
}

/// Sends `input` with a fixed gas limit, so that it is mined even though it reverts, and
/// checks that it did. (A send whose gas estimation fails would leave a gap in the provider's
/// cached nonce for `from`.)
async fn assert_mined_reverted(devnet: &Devnet, from: Address, input: Vec<u8>) {
    let request = tx(devnet, from, input).with_gas_limit(200_000);
    let result = devnet.send("TestEip3009Token refused authorization", request).await;
    assert!(matches!(result, Err(Error::Reverted { .. })), "{result:?}");
}

fn logs<E: SolEvent>(devnet: &Devnet, receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == devnet.addresses.eip3009_token)
        .filter_map(|l| E::decode_log(&l.inner).ok())
        .map(|l| l.data)
        .collect()
}

/// A funded payer, a merchant and a relayer (three spare keys) on a fresh devnet.
struct Parties {
    devnet: Devnet,
    payer: PrivateKeySigner,
    merchant: Address,
    relayer: Address,
    now: u64,
}

async fn parties() -> anyhow::Result<Parties> {
    let devnet = Devnet::spawn().await?;
    let payer = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let relayer = devnet.keys.spare[2].address();
    devnet.mint_eip3009(payer.address(), U256::from(10 * USD)).await?;
    let now = devnet.block_timestamp().await?;
    Ok(Parties { devnet, payer, merchant, relayer, now })
}

#[tokio::test]
async fn token_is_deployed_last_and_looks_like_usdc() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let p = devnet.provider();
    assert!(!p.get_code_at(a.eip3009_token).await?.is_empty());
    for other in [
        a.entry_point,
        a.simple_account_factory,
        a.verifying_paymaster,
        a.settlement,
        a.token,
        a.session_account_factory,
    ] {
        assert_ne!(a.eip3009_token, other);
    }

    let t = token(&devnet);
    assert_eq!(t.name().call().await?, "Devnet USD Coin");
    assert_eq!(t.symbol().call().await?, "USDC");
    assert_eq!(t.decimals().call().await?, 6);
    assert_eq!(t.version().call().await?, "2");
    assert_eq!(t.owner().call().await?, devnet.keys.deployer.address());
    assert_eq!(t.DOMAIN_SEPARATOR().call().await?, domain(&devnet).separator());
    assert_eq!(
        t.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call().await?,
        keccak256(TransferWithAuthorization::eip712_encode_type().as_bytes())
    );
    assert_eq!(
        t.RECEIVE_WITH_AUTHORIZATION_TYPEHASH().call().await?,
        keccak256(ReceiveWithAuthorization::eip712_encode_type().as_bytes())
    );
    assert_eq!(
        t.CANCEL_AUTHORIZATION_TYPEHASH().call().await?,
        keccak256(CancelAuthorization::eip712_encode_type().as_bytes())
    );
    // Circle's published constants.
    assert_eq!(
        t.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call().await?,
        alloy::primitives::b256!(
            "0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
        )
    );

    // Only the owner mints; mint and balance go through the devnet helpers.
    let who = devnet.keys.spare[0].address();
    devnet.mint_eip3009(who, U256::from(5)).await?;
    assert_eq!(devnet.eip3009_balance(who).await?, U256::from(5));
    assert_eq!(devnet.token_balance(who).await?, U256::ZERO, "TestStablecoin is separate");
    let mint = TestEip3009Token::mintCall { to: who, amount: U256::from(1) }.abi_encode();
    assert!(matches!(
        refusal(&devnet, who, mint).await,
        TokenError::OwnableUnauthorizedAccount(e) if e.account == who
    ));
    Ok(())
}

#[tokio::test]
async fn transfer_with_vrs_signature_moves_funds_once() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let t = token(&devnet);
    let auth = authorization(payer.address(), merchant, 3 * USD, 0, now + 600, nonce("vrs"));
    let sig = sign(&payer, auth.eip712_signing_hash(&domain(&devnet)));
    assert!(!t.authorizationState(payer.address(), auth.nonce).call().await?);

    let receipt = submit(&devnet, relayer, with_vrs(&auth, &sig)).await?;
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(3 * USD));
    assert_eq!(devnet.eip3009_balance(payer.address()).await?, U256::from(7 * USD));
    assert!(t.authorizationState(payer.address(), auth.nonce).call().await?);
    let used = logs::<TestEip3009Token::AuthorizationUsed>(&devnet, &receipt);
    assert_eq!(used.len(), 1);
    assert_eq!((used[0].authorizer, used[0].nonce), (payer.address(), auth.nonce));
    let transfers = logs::<TestEip3009Token::Transfer>(&devnet, &receipt);
    assert_eq!(transfers.len(), 1);
    assert_eq!(
        (transfers[0].from, transfers[0].to, transfers[0].value),
        (payer.address(), merchant, auth.value)
    );

    // Replaying the same authorization (either overload) is refused.
    for input in [with_vrs(&auth, &sig), with_bytes(&auth, &sig)] {
        assert!(matches!(
            refusal(&devnet, relayer, input.clone()).await,
            TokenError::AuthorizationUsedOrCanceled(e)
                if e.authorizer == payer.address() && e.nonce == auth.nonce
        ));
        assert_mined_reverted(&devnet, relayer, input).await;
    }
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(3 * USD));
    Ok(())
}

#[tokio::test]
async fn transfer_with_bytes_signature_moves_funds_once() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let auth = authorization(payer.address(), merchant, 2 * USD, now - 10, now + 600, nonce("b"));
    let sig = sign(&payer, auth.eip712_signing_hash(&domain(&devnet)));

    let receipt = submit(&devnet, relayer, with_bytes(&auth, &sig)).await?;
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(2 * USD));
    assert_eq!(devnet.eip3009_balance(payer.address()).await?, U256::from(8 * USD));
    assert_eq!(logs::<TestEip3009Token::AuthorizationUsed>(&devnet, &receipt).len(), 1);
    assert!(matches!(
        refusal(&devnet, relayer, with_bytes(&auth, &sig)).await,
        TokenError::AuthorizationUsedOrCanceled(_)
    ));

    // A nonce is per authorizer: another payer may use the same one.
    let other = devnet.keys.spare[3].clone();
    devnet.mint_eip3009(other.address(), U256::from(USD)).await?;
    let theirs = authorization(other.address(), merchant, USD, 0, now + 600, auth.nonce);
    let sig = sign(&other, theirs.eip712_signing_hash(&domain(&devnet)));
    submit(&devnet, relayer, with_bytes(&theirs, &sig)).await?;
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(3 * USD));
    Ok(())
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_refused() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let d = domain(&devnet);

    let early = authorization(payer.address(), merchant, USD, now + 3_600, now + 7_200, nonce("e"));
    let sig = sign(&payer, early.eip712_signing_hash(&d));
    assert!(matches!(
        refusal(&devnet, relayer, with_bytes(&early, &sig)).await,
        TokenError::AuthorizationNotYetValid(e) if e.validAfter == early.validAfter
    ));

    // Valid now, expired after the clock moves past validBefore.
    let late = authorization(payer.address(), merchant, USD, 0, now + 60, nonce("l"));
    let late_sig = sign(&payer, late.eip712_signing_hash(&d));
    devnet.provider().call(tx(&devnet, relayer, with_bytes(&late, &late_sig))).await?;
    devnet.increase_time(120).await?;
    assert!(matches!(
        refusal(&devnet, relayer, with_vrs(&late, &late_sig)).await,
        TokenError::AuthorizationExpired(e) if e.validBefore == late.validBefore
    ));
    assert_mined_reverted(&devnet, relayer, with_bytes(&late, &late_sig)).await;

    // The early one becomes valid once the clock passes validAfter.
    devnet.increase_time(3_600).await?;
    submit(&devnet, relayer, with_bytes(&early, &sig)).await?;
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(USD));
    Ok(())
}

/// Sends `input` from `from` in a block mined at exactly `at`; a fixed gas limit skips
/// estimation (which would refuse a reverting call before it is mined).
async fn mined_at(
    devnet: &Devnet,
    from: Address,
    at: u64,
    input: Vec<u8>,
) -> Result<TransactionReceipt, Error> {
    devnet.provider().anvil_set_next_block_timestamp(at).await?;
    let request = tx(devnet, from, input).with_gas_limit(200_000);
    devnet.send("transferWithAuthorization at a fixed time", request).await
}

/// USDC's rule is strict on both ends: `validAfter < block.timestamp < validBefore`.
#[tokio::test]
async fn time_window_bounds_are_exclusive() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let d = domain(&devnet);
    let p = devnet.provider();
    let at = now + 100;
    let a = authorization(payer.address(), merchant, USD, at, at + 100, nonce("after"));
    let sig = sign(&payer, a.eip712_signing_hash(&d));
    assert!(matches!(
        mined_at(&devnet, relayer, at, with_bytes(&a, &sig)).await,
        Err(Error::Reverted { .. })
    ));

    let at = now + 200;
    let b = authorization(payer.address(), merchant, USD, 0, at, nonce("before"));
    let sig = sign(&payer, b.eip712_signing_hash(&d));
    assert!(matches!(
        mined_at(&devnet, relayer, at, with_bytes(&b, &sig)).await,
        Err(Error::Reverted { .. })
    ));

    let at = now + 300;
    let c = authorization(payer.address(), merchant, USD, at - 1, at + 1, nonce("inside"));
    let sig = sign(&payer, c.eip712_signing_hash(&d));
    let receipt = mined_at(&devnet, relayer, at, with_bytes(&c, &sig)).await?;
    assert_eq!(
        p.get_block_by_hash(receipt.block_hash.expect("mined")).await?.map(|b| b.header.timestamp),
        Some(at)
    );

    let t = token(&devnet);
    assert!(!t.authorizationState(payer.address(), a.nonce).call().await?);
    assert!(!t.authorizationState(payer.address(), b.nonce).call().await?);
    assert!(t.authorizationState(payer.address(), c.nonce).call().await?);
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(USD));
    Ok(())
}

#[tokio::test]
async fn wrong_signatures_are_refused() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let d = domain(&devnet);
    let thief = devnet.keys.spare[3].clone();
    let auth = authorization(payer.address(), merchant, USD, 0, now + 600, nonce("w"));

    // Signed by someone other than `from`.
    let forged = sign(&thief, auth.eip712_signing_hash(&d));
    for input in [with_vrs(&auth, &forged), with_bytes(&auth, &forged)] {
        assert!(matches!(refusal(&devnet, relayer, input).await, TokenError::InvalidSignature(_)));
    }

    // The payer's signature does not cover a different amount, recipient, or domain.
    let sig = sign(&payer, auth.eip712_signing_hash(&d));
    let mut more = auth.clone();
    more.value = U256::from(2 * USD);
    let mut elsewhere = auth.clone();
    elsewhere.to = thief.address();
    for changed in [&more, &elsewhere] {
        assert!(matches!(
            refusal(&devnet, relayer, with_bytes(changed, &sig)).await,
            TokenError::InvalidSignature(_)
        ));
    }
    let mut other_chain = d.clone();
    other_chain.chain_id = Some(U256::from(1));
    let wrong_domain = sign(&payer, auth.eip712_signing_hash(&other_chain));
    assert!(matches!(
        refusal(&devnet, relayer, with_bytes(&auth, &wrong_domain)).await,
        TokenError::InvalidSignature(_)
    ));
    // Malformed signature bytes are an invalid signature, not a panic.
    let short = TestEip3009Token::transferWithAuthorization_1Call {
        signature: Bytes::from(vec![1u8; 64]),
        ..TestEip3009Token::transferWithAuthorization_1Call::abi_decode(&with_bytes(&auth, &sig))?
    }
    .abi_encode();
    assert!(matches!(refusal(&devnet, relayer, short).await, TokenError::InvalidSignature(_)));

    // Refusals changed nothing: the real signature still works.
    submit(&devnet, relayer, with_bytes(&auth, &sig)).await?;
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(USD));
    Ok(())
}

#[tokio::test]
async fn cancel_authorization_burns_the_nonce() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let d = domain(&devnet);
    let t = token(&devnet);
    let auth = authorization(payer.address(), merchant, USD, 0, now + 600, nonce("c"));
    let sig = sign(&payer, auth.eip712_signing_hash(&d));

    let cancel = CancelAuthorization { authorizer: payer.address(), nonce: auth.nonce };
    let cancel_sig = sign(&payer, cancel.eip712_signing_hash(&d));
    // A cancellation signed by someone else is refused.
    let forged = sign(&devnet.keys.spare[3], cancel.eip712_signing_hash(&d));
    let forged_call = TestEip3009Token::cancelAuthorization_1Call {
        authorizer: cancel.authorizer,
        nonce: cancel.nonce,
        signature: Bytes::from(forged.as_bytes()),
    };
    assert!(matches!(
        refusal(&devnet, relayer, forged_call.abi_encode()).await,
        TokenError::InvalidSignature(_)
    ));

    let vrs = TestEip3009Token::cancelAuthorization_0Call {
        authorizer: cancel.authorizer,
        nonce: cancel.nonce,
        v: 27 + u8::from(cancel_sig.v()),
        r: cancel_sig.r().into(),
        s: cancel_sig.s().into(),
    };
    let receipt = submit(&devnet, relayer, vrs.abi_encode()).await?;
    let canceled = logs::<TestEip3009Token::AuthorizationCanceled>(&devnet, &receipt);
    assert_eq!(canceled.len(), 1);
    assert_eq!((canceled[0].authorizer, canceled[0].nonce), (payer.address(), auth.nonce));
    assert!(t.authorizationState(payer.address(), auth.nonce).call().await?);

    assert!(matches!(
        refusal(&devnet, relayer, with_bytes(&auth, &sig)).await,
        TokenError::AuthorizationUsedOrCanceled(_)
    ));
    let again = TestEip3009Token::cancelAuthorization_1Call {
        authorizer: cancel.authorizer,
        nonce: cancel.nonce,
        signature: Bytes::from(cancel_sig.as_bytes()),
    };
    assert!(matches!(
        refusal(&devnet, relayer, again.abi_encode()).await,
        TokenError::AuthorizationUsedOrCanceled(_)
    ));
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::ZERO);

    // The bytes overload cancels too; a used nonce cannot be canceled.
    let other = CancelAuthorization { authorizer: payer.address(), nonce: nonce("c2") };
    let other_sig = sign(&payer, other.eip712_signing_hash(&d));
    let call = TestEip3009Token::cancelAuthorization_1Call {
        authorizer: other.authorizer,
        nonce: other.nonce,
        signature: Bytes::from(other_sig.as_bytes()),
    };
    submit(&devnet, relayer, call.abi_encode()).await?;
    assert!(t.authorizationState(payer.address(), other.nonce).call().await?);
    Ok(())
}

#[tokio::test]
async fn receive_with_authorization_only_from_the_payee() -> anyhow::Result<()> {
    let Parties { devnet, payer, merchant, relayer, now } = parties().await?;
    let d = domain(&devnet);
    let receive = ReceiveWithAuthorization {
        from: payer.address(),
        to: merchant,
        value: U256::from(4 * USD),
        validAfter: U256::ZERO,
        validBefore: U256::from(now + 600),
        nonce: nonce("r"),
    };
    let sig = sign(&payer, receive.eip712_signing_hash(&d));
    let vrs = TestEip3009Token::receiveWithAuthorization_0Call {
        from: receive.from,
        to: receive.to,
        value: receive.value,
        validAfter: receive.validAfter,
        validBefore: receive.validBefore,
        nonce: receive.nonce,
        v: 27 + u8::from(sig.v()),
        r: sig.r().into(),
        s: sig.s().into(),
    };
    let bytes = TestEip3009Token::receiveWithAuthorization_1Call {
        from: receive.from,
        to: receive.to,
        value: receive.value,
        validAfter: receive.validAfter,
        validBefore: receive.validBefore,
        nonce: receive.nonce,
        signature: Bytes::from(sig.as_bytes()),
    };

    // A relayer (anyone but `to`) may not submit it, with either overload.
    for input in [vrs.abi_encode(), bytes.abi_encode()] {
        assert!(matches!(
            refusal(&devnet, relayer, input).await,
            TokenError::CallerMustBePayee(e) if e.caller == relayer && e.payee == merchant
        ));
    }
    // A ReceiveWithAuthorization signature is not a TransferWithAuthorization one.
    let as_transfer = authorization(payer.address(), merchant, 4 * USD, 0, now + 600, nonce("r"));
    assert!(matches!(
        refusal(&devnet, relayer, with_bytes(&as_transfer, &sig)).await,
        TokenError::InvalidSignature(_)
    ));

    let receipt = submit(&devnet, merchant, vrs.abi_encode()).await?;
    assert_eq!(logs::<TestEip3009Token::AuthorizationUsed>(&devnet, &receipt).len(), 1);
    assert_eq!(devnet.eip3009_balance(merchant).await?, U256::from(4 * USD));
    assert_eq!(devnet.eip3009_balance(payer.address()).await?, U256::from(6 * USD));
    assert!(matches!(
        refusal(&devnet, merchant, bytes.abi_encode()).await,
        TokenError::AuthorizationUsedOrCanceled(_)
    ));
    Ok(())
}
