//! One revm inspector with two jobs, both off unless asked for:
//!
//! * an ERC-7562 checker for the account's `validateUserOp` frame (unstaked sender rules: banned
//!   opcodes, `GAS` only before a call, storage only the sender's own or associated with it, value
//!   only to the EntryPoint, no calls to code-less addresses);
//! * a hash override, which makes one keccak256 result come out as another: the finding-4 test uses it
//!   to stand in for a 2^64 birthday search that produced two session ids with a common prefix.

use alloy::primitives::{Address, B256, U256};
use revm::{
    Inspector,
    context_interface::ContextTr,
    interpreter::{
        CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter,
        interpreter_types::{InputsTr, Jumps},
    },
};

use crate::chain::ENTRY_POINT;

const VALIDATE_USER_OP: [u8; 4] = [0x3a, 0x87, 0x1c, 0xdd];
const DEPOSIT_TO: [u8; 4] = [0xb7, 0x60, 0xfa, 0xf9];
const KECCAK256: u8 = 0x20;
const GAS: u8 = 0x5a;
const SLOAD: u8 = 0x54;
const SSTORE: u8 = 0x55;

/// ERC-7562 OP-011 (and OP-080's BALANCE/SELFBALANCE, OP-031 CREATE2 outside deployment).
const BANNED: &[(u8, &str)] = &[
    (0x31, "BALANCE"),
    (0x32, "ORIGIN"),
    (0x3a, "GASPRICE"),
    (0x40, "BLOCKHASH"),
    (0x41, "COINBASE"),
    (0x42, "TIMESTAMP"),
    (0x43, "NUMBER"),
    (0x44, "PREVRANDAO"),
    (0x45, "GASLIMIT"),
    (0x47, "SELFBALANCE"),
    (0x48, "BASEFEE"),
    (0x49, "BLOBHASH"),
    (0x4a, "BLOBBASEFEE"),
    (0xf0, "CREATE"),
    (0xf5, "CREATE2"),
    (0xff, "SELFDESTRUCT"),
];

/// The [`Chain`](crate::Chain)'s inspector: set [`Probe::erc7562_sender`] or
/// [`Probe::hash_override`] through `chain.evm.inspector`, send, then read the findings.
#[derive(Debug, Default)]
pub struct Probe {
    /// Check `validateUserOp` frames of this sender.
    pub erc7562_sender: Option<Address>,
    /// Rule violations found so far.
    pub violations: Vec<String>,
    /// How many `validateUserOp` frames were checked.
    pub frames_checked: usize,
    /// Make a keccak256 that yields `.0` yield `.1` instead.
    pub hash_override: Option<(B256, B256)>,
    depth: usize,
    validating_at: Option<usize>,
    last_opcode: u8,
    gas_pending: bool,
    keccaks: Vec<(U256, Vec<u8>)>,
}

impl Probe {
    /// Whether transactions must run through the inspector at all.
    pub fn active(&self) -> bool {
        self.erc7562_sender.is_some() || self.hash_override.is_some()
    }

    fn validating(&self) -> bool {
        self.validating_at.is_some()
    }

    fn associated(&self, sender: Address, storage_of: Address, slot: U256) -> bool {
        if storage_of == sender || slot == U256::from_be_slice(sender.as_slice()) {
            return true;
        }
        let mut key = [0u8; 32];
        key[12..].copy_from_slice(sender.as_slice());
        self.keccaks.iter().any(|(out, input)| {
            input.len() >= 32
                && input[..32] == key
                && slot >= *out
                && slot - *out <= U256::from(128)
        })
    }
}

impl<CTX: ContextTr> Inspector<CTX> for Probe {
    fn step(&mut self, interp: &mut Interpreter, _context: &mut CTX) {
        let op = interp.bytecode.opcode();
        self.last_opcode = op;
        let Some(sender) = self.erc7562_sender else { return };
        if !self.validating() {
            return;
        }
        if self.gas_pending && !matches!(op, 0xf1 | 0xf2 | 0xf4 | 0xfa) {
            self.violations.push("OP-012: GAS not followed by a call".into());
        }
        self.gas_pending = op == GAS;
        if let Some((_, name)) = BANNED.iter().find(|(code, _)| *code == op) {
            self.violations.push(format!("OP-011: banned opcode {name}"));
        }
        match op {
            KECCAK256 => {
                let (Ok(offset), Ok(len)) = (interp.stack.peek(0), interp.stack.peek(1)) else {
                    return;
                };
                let (offset, len) = (offset.saturating_to::<usize>(), len.saturating_to::<usize>());
                let input = interp.memory.slice_len(offset, len).to_vec();
                self.keccaks.push((U256::ZERO, input));
            }
            SLOAD | SSTORE => {
                let Ok(slot) = interp.stack.peek(0) else { return };
                let storage_of = interp.input.target_address();
                if !self.associated(sender, storage_of, slot) {
                    self.violations.push(format!(
                        "STO-021: {} slot {slot:#x} of {storage_of} not associated with the sender",
                        if op == SLOAD { "SLOAD" } else { "SSTORE" }
                    ));
                }
            }
            _ => {}
        }
    }

    fn step_end(&mut self, interp: &mut Interpreter, _context: &mut CTX) {
        if self.last_opcode != KECCAK256 {
            return;
        }
        let Ok(out) = interp.stack.peek(0) else { return };
        if self.validating()
            && let Some(last) = self.keccaks.last_mut()
        {
            last.0 = out;
        }
        if let Some((from, to)) = self.hash_override
            && B256::from(out) == from
        {
            let _ = interp.stack.set(0, U256::from_be_bytes(to.0));
        }
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.depth += 1;
        let sender = self.erc7562_sender?;
        let data = inputs.input.bytes(context);
        if !self.validating() {
            if inputs.target_address == sender && data.len() >= 4 && data[..4] == VALIDATE_USER_OP {
                self.validating_at = Some(self.depth);
                self.frames_checked += 1;
                self.keccaks.clear();
            }
            return None;
        }
        let value = inputs.value.get();
        let target = inputs.bytecode_address;
        if !value.is_zero() && target != ENTRY_POINT {
            self.violations.push(format!("OP-061: value sent to {target}"));
        }
        if target == ENTRY_POINT
            && !data.is_empty()
            && !(data.len() >= 4 && data[..4] == DEPOSIT_TO)
        {
            self.violations.push("OP-052: call into the EntryPoint other than depositTo".into());
        }
        let precompile = U256::from_be_slice(target.as_slice()) <= U256::from(0x11);
        if !precompile && inputs.known_bytecode.1.is_empty() && target != ENTRY_POINT {
            let code_len = revm::context_interface::JournalTr::code(context.journal_mut(), target)
                .map(|c| c.data.len())
                .unwrap_or(0);
            if code_len == 0 {
                self.violations.push(format!("OP-041: call to {target}, which has no code"));
            }
        }
        None
    }

    fn call_end(&mut self, _context: &mut CTX, _inputs: &CallInputs, _outcome: &mut CallOutcome) {
        if self.validating_at == Some(self.depth) {
            self.validating_at = None;
            self.gas_pending = false;
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn create(&mut self, _context: &mut CTX, _inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.depth += 1;
        None
    }

    fn create_end(
        &mut self,
        _context: &mut CTX,
        _inputs: &CreateInputs,
        _outcome: &mut CreateOutcome,
    ) {
        self.depth = self.depth.saturating_sub(1);
    }
}
