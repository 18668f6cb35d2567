//! Off-chain verification cost of one session payment (decode + two signature recoveries + scope
//! checks, no RPC), next to the physical floor on this machine: one secp256k1 recovery + keccak.

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U48, U96},
        keccak256,
    },
    signers::{SignerSync, local::PrivateKeySigner},
};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use x402_aa::{ENTRY_POINT_V06, UserOperation, encode_payment_batch};
use x402_aa_session::{
    MerchantTree, SessionGrant, SessionMode, SessionSignature, SessionSignatureCodec,
    policy::{SessionOpSignature, SessionUsage, check_session_op},
    session_digest, session_id,
};

fn session_op() -> (UserOperation, B256, Address) {
    let owner = PrivateKeySigner::from_bytes(&B256::repeat_byte(1)).expect("key");
    let session = PrivateKeySigner::from_bytes(&B256::repeat_byte(2)).expect("key");
    let (account, token, settlement, merchant) = (
        Address::repeat_byte(0xac),
        Address::repeat_byte(0x70),
        Address::repeat_byte(0x5e),
        Address::repeat_byte(5),
    );
    let merchants: Vec<Address> = (1..=8).map(Address::repeat_byte).collect();
    let tree = MerchantTree::new(merchants).expect("non-empty");
    let grant = SessionGrant {
        sessionKey: session.address(),
        validAfter: U48::from(1_000u64),
        validUntil: U48::from(1_000_000u64),
        token,
        settlement,
        perPaymentMax: U96::from(1_000_000u64),
        periodCap: U96::from(10_000_000u64),
        period: 86_400,
        lifetimeCap: U96::from(100_000_000u64),
        merchantRoot: tree.root(),
        paymaster: Address::ZERO,
        epoch: 0,
        salt: B256::ZERO,
        ..Default::default()
    };
    let chain_id = 689;
    let id = session_id(&grant, chain_id, account);
    let owner_sig: Bytes = owner.sign_hash_sync(&id).expect("sign").as_bytes().into();
    let mut op = UserOperation {
        sender: account,
        call_data: encode_payment_batch(
            token,
            settlement,
            merchant,
            U256::from(500_000u64),
            keccak256("req"),
        ),
        paymaster_and_data: Bytes::from(
            [Address::repeat_byte(0x99).as_slice(), &[0u8; 129]].concat(),
        ),
        ..Default::default()
    };
    let mut sig = SessionSignature {
        grant,
        owner_signature: owner_sig,
        period_index: 0,
        merchant_proof: tree.proof(merchant).expect("member"),
        session_signature: Bytes::from(vec![0u8; 65]),
    };
    let hash = op.hash(ENTRY_POINT_V06, chain_id);
    sig.session_signature = session
        .sign_message_sync(session_digest(hash, id, 0).as_slice())
        .expect("sign")
        .as_bytes()
        .into();
    op.signature = sig.encode(SessionMode::Enable).expect("encodes");
    (op, hash, owner.address())
}

fn bench(c: &mut Criterion) {
    let (op, hash, owner) = session_op();
    let usage = SessionUsage::default();
    let verify = |op: &UserOperation, hash| {
        let signature = SessionOpSignature::decode(op, 689).expect("session signature");
        check_session_op(op, hash, &signature, owner, &usage, 5_000)
    };
    assert!(verify(&op, hash).is_ok(), "fixture must be a valid op");
    c.bench_function("session_payment_offchain_verify", |b| {
        b.iter(|| verify(black_box(&op), black_box(hash)).expect("valid"))
    });
    let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(3)).expect("key");
    let message = op.signature.clone();
    let sig = signer.sign_hash_sync(&keccak256(&message)).expect("sign").as_bytes();
    // The recovery the scope check makes (libsecp256k1, by the contracts' rules).
    c.bench_function("floor_secp256k1_recover_plus_keccak", |b| {
        b.iter(|| {
            let digest = keccak256(black_box(&message));
            black_box(x402_aa_session::policy::recover_signer(&digest, &sig).expect("recover"))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
