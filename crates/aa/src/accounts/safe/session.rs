//! Session keys on a Safe through this project's `SafeSessionModule` (`contracts/src/safe/`), in
//! protocol terms only (no RPC, no signing).
//!
//! - **Install**: the module is enabled as a Safe module *and* set as the Safe's fallback handler;
//!   Safe4337Module stays enabled. The module answers the EntryPoint's `validateUserOp` for session
//!   ops and forwards every other op, unchanged, to Safe4337Module through the Safe. A new Safe gets
//!   both at setup ([`SafeDeployment::init_code_with_session_module`]); an existing one with one owner
//!   op ([`SafeDeployment::install_session_module_call`]).
//! - **Session op**: callData is exactly [`encode_session_payment`]'s 164 bytes,
//!   `executeSessionPayment(token, settlement, merchant, amount, requestHash)` on the Safe; the module
//!   makes the Safe call `approve(settlement, amount)` then `settle(...)`. The op is routed by that
//!   selector, so the signature is the plain session signature ([`session_signature`]), with no mode
//!   prefix.
//! - **Controls** (`revoke`, `revokeAll`, `setPaused`, `enableSession`): the Safe must call *itself*
//!   ([`control_call`]), because anyone's call through the fallback reaches the module with the Safe as
//!   `msg.sender`; the module tells them apart by the caller the fallback appends.
//! - **Grants**: a 1-of-1 Safe may enable a grant in the first session op (owner signature over the
//!   session id, as on every host); any other Safe sends [`enable_session_call`] as an owner op at its
//!   threshold, then uses the grant in use mode.

use alloy::{
    primitives::{Address, Bytes, U256},
    sol,
    sol_types::SolCall,
};

use super::{
    ISafe4337Module, MultiSendTx, Operation, SafeAbi, SafeConfig, SafeConfigError, SafeDeployment,
    encode_multi_send,
};
use crate::{
    accounts::{
        AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind,
        PaymentCall, SignerRole,
    },
    call_data::DecodedPayment,
};

sol! {
    /// Safe 1.4.1's own management calls the install op makes (the Safe calling itself).
    interface ISafeAdmin {
        function enableModule(address module) external;
        function setFallbackHandler(address handler) external;
    }

    /// `SessionPolicy`'s grant as `SafeSessionModule.enableSession` takes it (a static tuple).
    #[derive(Debug, PartialEq, Eq)]
    struct SafeSessionGrant {
        address sessionKey;
        uint48 validAfter;
        uint48 validUntil;
        address token;
        address settlement;
        uint96 perPaymentMax;
        uint96 periodCap;
        uint32 period;
        uint96 lifetimeCap;
        uint24 maxPaymentsPerPeriod;
        uint96 merchantPeriodCap;
        bytes32 merchantRoot;
        address paymaster;
        uint96 maxGasCostPerOp;
        uint96 gasPeriodBudget;
        uint96 gasLifetimeBudget;
        uint32 epoch;
        bytes32 salt;
    }

    /// Safe 1.4.1's owner-submitted transaction.
    interface ISafeExec {
        function execTransaction(address to, uint256 value, bytes data, uint8 operation,
            uint256 safeTxGas, uint256 baseGas, uint256 gasPrice, address gasToken,
            address refundReceiver, bytes signatures) external payable returns (bool success);
    }

    interface ISafeSessionControl {
        function enableSession(SafeSessionGrant grant) external;
    }
}

pub use crate::accounts::session_payment::{
    SESSION_PAYMENT_LEN, SessionPaymentCallError as SafeSessionCallDataError,
    decode_session_payment, encode_session_payment,
};

/// A session op's `signature`: the session signature itself (mode byte first, as on
/// SessionKeyAccount). The callData's selector routes the op to the module, so nothing is prefixed.
pub fn session_signature(session_signature: &[u8]) -> Bytes {
    Bytes::copy_from_slice(session_signature)
}

/// The callData of an owner op in which the Safe calls itself with `module_call` (`revoke(id)`,
/// `revokeAll()`, `setPaused(id, paused)`, `enableSession(grant)`): Safe4337Module's
/// `executeUserOpWithErrorString(safe, 0, module_call, CALL)`. The Safe has no such functions, so its
/// fallback hands the call to the module with the Safe as original caller, which is how the module
/// knows the owners sent it.
pub fn control_call(safe: Address, module_call: impl Into<Bytes>) -> Bytes {
    ISafe4337Module::executeUserOpWithErrorStringCall {
        to: safe,
        value: U256::ZERO,
        data: module_call.into(),
        operation: Operation::Call as u8,
    }
    .abi_encode()
    .into()
}

/// The input of a transaction `owner` sends to a **threshold-1** Safe to make it call itself with
/// `module_call` (the EOA route for controls, beside [`control_call`]'s owner op):
/// `execTransaction(safe, 0, module_call, CALL, 0, 0, 0, 0, 0, sig)` where `sig` is Safe's
/// "pre-validated" signature for the sender itself (`r` = owner, `s` = 0, `v` = 1), valid only when
/// `owner` sends it; no nonce or hash to sign.
pub fn owner_transaction(safe: Address, owner: Address, module_call: impl Into<Bytes>) -> Bytes {
    let mut signatures = owner.into_word().to_vec();
    signatures.extend([0u8; 32]);
    signatures.push(1);
    ISafeExec::execTransactionCall {
        to: safe,
        value: U256::ZERO,
        data: module_call.into(),
        operation: Operation::Call as u8,
        safeTxGas: U256::ZERO,
        baseGas: U256::ZERO,
        gasPrice: U256::ZERO,
        gasToken: Address::ZERO,
        refundReceiver: Address::ZERO,
        signatures: signatures.into(),
    }
    .abi_encode()
    .into()
}

/// `enableSession(grant)`, the module call by which a Safe of any threshold enables a grant (send it
/// with [`control_call`] as an owner op signed at the threshold).
pub fn enable_session_call(grant: SafeSessionGrant) -> Bytes {
    ISafeSessionControl::enableSessionCall { grant }.abi_encode().into()
}

impl SafeDeployment {
    /// `initCode` of a Safe born with sessions: Safe4337Module and `session_module` enabled, the latter
    /// as fallback handler. Its address differs from the stock setup's (the initializer is salted in).
    pub fn init_code_with_session_module(
        &self,
        config: &SafeConfig,
        session_module: Address,
    ) -> Result<Bytes, SafeConfigError> {
        self.init_code_with(config, Some(session_module))
    }

    /// The counterfactual address for [`Self::init_code_with_session_module`].
    pub fn account_address_with_session_module(
        &self,
        config: &SafeConfig,
        session_module: Address,
    ) -> Result<Address, SafeConfigError> {
        self.account_address_with(config, Some(session_module))
    }

    /// The owner op callData that installs sessions on an existing Safe: one delegatecall into
    /// MultiSendCallOnly in which the Safe calls itself twice, `enableModule(session_module)` and
    /// `setFallbackHandler(session_module)`. After it, owner ops still run on Safe4337Module (the new
    /// handler forwards them), so Safe4337Module must stay enabled.
    pub fn install_session_module_call(&self, safe: Address, session_module: Address) -> Bytes {
        let call = |data: Vec<u8>| MultiSendTx {
            operation: Operation::Call,
            to: safe,
            value: U256::ZERO,
            data: data.into(),
        };
        let transactions = encode_multi_send(&[
            call(ISafeAdmin::enableModuleCall { module: session_module }.abi_encode()),
            call(ISafeAdmin::setFallbackHandlerCall { handler: session_module }.abi_encode()),
        ]);
        ISafe4337Module::executeUserOpWithErrorStringCall {
            to: self.multi_send_call_only,
            value: U256::ZERO,
            data: super::IMultiSend::multiSendCall { transactions }.abi_encode().into(),
            operation: Operation::DelegateCall as u8,
        }
        .abi_encode()
        .into()
    }
}

/// A Safe with `SafeSessionModule` installed, as an [`AccountAbi`] for its session key: payments in
/// the session shape, address and initCode of a Safe born with the module (owners' config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafeSessionAbi {
    /// The Safe's own ABI (owner ops, address, initCode).
    pub account: SafeAbi,
    /// Our `SafeSessionModule`.
    pub module: Address,
}

impl SafeSessionAbi {
    /// Session payments through `module` in Safes of `deployment`.
    pub const fn new(deployment: SafeDeployment, module: Address) -> Self {
        Self { account: SafeAbi::new(deployment), module }
    }
}

impl AccountAbi for SafeSessionAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Safe
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        let (deployment, safe) = self.account.parts(config);
        Ok(deployment.init_code_with_session_module(&safe, self.module)?)
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        let (deployment, safe) = self.account.parts(config);
        Ok(Some(deployment.account_address_with_session_module(&safe, self.module)?))
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        encode_session_payment(p.settlement, &p.settle)
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        Ok(decode_session_payment(call_data).map_err(super::SafeCallDataError::from)?)
    }

    /// The session payment's calls are the token's and the settlement's (the Safe makes them);
    /// anything else is an owner op's, judged as [`SafeAbi`] does.
    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        match decode_session_payment(call_data) {
            Ok(p) => Some(vec![p.settle.token, p.settlement]),
            Err(_) => self.account.call_targets(call_data),
        }
    }

    /// The module routes by callData; by signature alone, a session signature starts with its mode
    /// (1 or 2) and has the policy's lengths, while a SafeOp signature starts with the top byte of
    /// `validAfter`, zero for any real time.
    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        let session_len =
            |fixed: usize| signature.len() >= fixed && (signature.len() - fixed).is_multiple_of(32);
        match signature.first() {
            Some(1) if session_len(386) => SignerRole::Session,
            Some(2) if session_len(321) => SignerRole::Session,
            _ => SignerRole::Owner,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{B256, address, b256, hex, keccak256},
        sol_types::SolValue,
    };

    use super::*;
    use crate::{
        accounts::session_payment::SESSION_PAYMENT_SELECTOR,
        call_data::{ApproveCall, SettleCall},
    };

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const SAFE: Address = address!("0x4000000000000000000000000000000000000004");
    const MODULE: Address = address!("0x5000000000000000000000000000000000000005");
    const REQUEST: B256 =
        b256!("0x00000000000000000000000000000000000000000000000000000000000000aa");

    fn settle() -> SettleCall {
        SettleCall {
            merchant: MERCHANT,
            token: TOKEN,
            amount: U256::from(1_500_000u64),
            request_hash: REQUEST,
        }
    }

    /// Selectors as `contracts/src/safe/SafePayment.sol` and Safe 1.4.1 declare them (keccak of the
    /// signatures, computed independently with js-sha3).
    #[test]
    fn selectors_match_the_module_and_safe() {
        assert_eq!(SESSION_PAYMENT_SELECTOR, hex!("5f0dcdb8"));
        assert_eq!(ISafeAdmin::enableModuleCall::SELECTOR, hex!("610b5925"));
        assert_eq!(ISafeAdmin::setFallbackHandlerCall::SELECTOR, hex!("f08a0323"));
        assert_eq!(
            ISafeSessionControl::enableSessionCall::SELECTOR[..],
            keccak256(
                "enableSession((address,uint48,uint48,address,address,uint96,uint96,uint32,uint96,\
                 uint24,uint96,bytes32,address,uint96,uint96,uint96,uint32,bytes32))"
            )[..4]
        );
    }

    #[test]
    fn session_payment_golden_and_round_trip() {
        let data = encode_session_payment(SETTLEMENT, &settle());
        assert_eq!(data.len(), SESSION_PAYMENT_LEN);
        assert_eq!(
            data,
            Bytes::from(hex!(
                "5f0dcdb8"
                "0000000000000000000000001000000000000000000000000000000000000001"
                "0000000000000000000000002000000000000000000000000000000000000002"
                "0000000000000000000000003000000000000000000000000000000000000003"
                "000000000000000000000000000000000000000000000000000000000016e360"
                "00000000000000000000000000000000000000000000000000000000000000aa"
            ))
        );
        let decoded = decode_session_payment(&data).unwrap();
        assert_eq!(decoded.settlement, SETTLEMENT);
        assert_eq!(decoded.settle, settle());
        assert_eq!(
            decoded.approve,
            Some(ApproveCall { token: TOKEN, spender: SETTLEMENT, amount: settle().amount })
        );
    }

    #[test]
    fn decode_refuses_everything_else() {
        let data = encode_session_payment(SETTLEMENT, &settle()).to_vec();
        let mut long = data.clone();
        long.push(0);
        assert_eq!(
            decode_session_payment(&long),
            Err(SafeSessionCallDataError::WrongLength { len: 165 })
        );
        assert_eq!(
            decode_session_payment(&data[..100]),
            Err(SafeSessionCallDataError::WrongLength { len: 100 })
        );
        for word in 0..3 {
            let mut dirty = data.clone();
            dirty[4 + 32 * word] = 1;
            assert_eq!(
                decode_session_payment(&dirty),
                Err(SafeSessionCallDataError::DirtyAddress { word })
            );
        }
        let mut other = data.clone();
        other[0] ^= 1;
        assert!(matches!(
            decode_session_payment(&other),
            Err(SafeSessionCallDataError::NotSessionPayment { .. })
        ));
        assert!(matches!(
            decode_session_payment(&[]),
            Err(SafeSessionCallDataError::NotSessionPayment { selector: None })
        ));
        // Safe4337Module's owner calls are never session payments
        let owner = control_call(SAFE, data.clone());
        assert!(decode_session_payment(&owner).is_err());
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let _ = decode_session_payment(&bytes);
        }
    }

    #[test]
    fn owner_transaction_is_a_pre_validated_self_call() {
        let data = owner_transaction(SAFE, MERCHANT, vec![0xb7, 0x5c]);
        assert_eq!(data[..4], hex!("6a761202")); // execTransaction selector, Safe 1.4.1
        let call = ISafeExec::execTransactionCall::abi_decode(&data).unwrap();
        assert_eq!((call.to, call.operation, call.data.to_vec()), (SAFE, 0, vec![0xb7, 0x5c]));
        let mut sig = [0u8; 65];
        sig[12..32].copy_from_slice(MERCHANT.as_slice());
        sig[64] = 1;
        assert_eq!(call.signatures.to_vec(), sig.to_vec());
    }

    #[test]
    fn control_and_install_calls() {
        let revoke = hex!("b75c7dc6").to_vec(); // revoke(bytes32) selector: any module call
        let c = control_call(SAFE, revoke.clone());
        let decoded = ISafe4337Module::executeUserOpWithErrorStringCall::abi_decode(&c).unwrap();
        assert_eq!((decoded.to, decoded.value, decoded.operation), (SAFE, U256::ZERO, 0));
        assert_eq!(decoded.data.to_vec(), revoke);

        let d = SafeDeployment::CANONICAL;
        let install = d.install_session_module_call(SAFE, MODULE);
        let exec = ISafe4337Module::executeUserOpWithErrorStringCall::abi_decode(&install).unwrap();
        assert_eq!((exec.to, exec.operation), (d.multi_send_call_only, 1));
        let multi = super::super::IMultiSend::multiSendCall::abi_decode(&exec.data).unwrap();
        let txs = super::super::decode_multi_send(&multi.transactions).unwrap();
        assert_eq!(txs.len(), 2);
        assert!(
            txs.iter().all(|t| t.to == SAFE && t.operation == Operation::Call && t.value.is_zero())
        );
        assert_eq!(txs[0].data, ISafeAdmin::enableModuleCall { module: MODULE }.abi_encode());
        assert_eq!(
            txs[1].data,
            ISafeAdmin::setFallbackHandlerCall { handler: MODULE }.abi_encode()
        );
    }

    #[test]
    fn session_abi_speaks_the_session_shape() {
        let abi = SafeSessionAbi::new(SafeDeployment::CANONICAL, MODULE);
        let config = AccountConfig::single_owner(
            SafeDeployment::CANONICAL.proxy_factory,
            MERCHANT,
            U256::from(3),
        );
        let safe = SafeConfig::single_owner(MERCHANT, U256::from(3));
        assert_eq!(
            abi.counterfactual_address(&config).unwrap(),
            Some(
                SafeDeployment::CANONICAL
                    .account_address_with_session_module(&safe, MODULE)
                    .unwrap()
            )
        );
        let payment = PaymentCall { settlement: SETTLEMENT, settle: settle() };
        let data = abi.encode_payment(&payment);
        assert_eq!(data, encode_session_payment(SETTLEMENT, &settle()));
        assert_eq!(abi.decode_payment(&data).unwrap().settle, settle());
        assert!(matches!(
            abi.decode_payment(&data[..100]),
            Err(AccountCallDataError::Safe(super::super::SafeCallDataError::Session(_)))
        ));
        assert_eq!(abi.call_targets(&data), Some(vec![TOKEN, SETTLEMENT]));
        let mut use_sig = vec![2u8];
        use_sig.extend([0u8; 320]);
        assert_eq!(abi.signer_role(&use_sig), SignerRole::Session);
        let mut enable_sig = vec![1u8];
        enable_sig.extend([0u8; 385 + 32]);
        assert_eq!(abi.signer_role(&enable_sig), SignerRole::Session);
        assert_eq!(abi.signer_role(&[0u8; 77]), SignerRole::Owner);
        assert_eq!(abi.signer_role(&use_sig[..300]), SignerRole::Owner);
    }

    #[test]
    fn a_safe_born_with_sessions_has_its_own_address() {
        let d = SafeDeployment::CANONICAL;
        let config = SafeConfig::single_owner(MERCHANT, U256::ZERO);
        let stock = d.account_address(&config).unwrap();
        let with = d.account_address_with_session_module(&config, MODULE).unwrap();
        assert_ne!(stock, with);
        let init = d.init_code_with_session_module(&config, MODULE).unwrap();
        assert_eq!(init[..20], d.proxy_factory[..]);
        // the initializer enables both modules and names the session module as handler
        let create =
            super::super::ISafeProxyFactory::createProxyWithNonceCall::abi_decode(&init[20..])
                .unwrap();
        let setup = super::super::ISafe::setupCall::abi_decode(&create.initializer).unwrap();
        assert_eq!(setup.fallbackHandler, MODULE);
        let enable =
            super::super::IAddModulesLib::enableModulesCall::abi_decode(&setup.data).unwrap();
        assert_eq!(enable.modules, vec![d.module, MODULE]);
        // the grant is 18 static words, inline after the selector
        let grant = <SafeSessionGrant as SolValue>::abi_decode(&[0u8; 576]).unwrap();
        assert_eq!(enable_session_call(grant).len(), 4 + 18 * 32);
        assert_eq!(session_signature(&[2, 3]), Bytes::from(vec![2, 3]));
    }
}
