//! What the ledger's bookkeeping needs from a database, inside one transaction. The policy check,
//! the tally and the state machine of a reservation (in `mod.rs`) are written once against this
//! trait; SQLite (`store.rs`) and Postgres (`postgres.rs`) only store and load rows.

use alloy::primitives::B256;

use super::{
    LedgerError,
    store::{Baseline, SessionRow},
    types::{
        Limits, Reservation, ReservationId, ReservationRequest, ReservationState, SettlementRecord,
    },
};

pub(super) trait Tx {
    /// Serialises this transaction with every other writer of the session until it ends, so the
    /// checks and the write that follows them are one step across processes. SQLite: nothing to
    /// do, the transaction already holds the database's write lock. Postgres: the session row's
    /// lock. A session that does not exist locks nothing (the caller then refuses it).
    fn lock_session(&self, session_id: B256) -> Result<(), LedgerError>;
    /// [`Tx::lock_session`] for the session a reservation belongs to.
    fn lock_session_of(&self, id: ReservationId) -> Result<(), LedgerError>;
    /// Serialises reservations of the same request hash across sessions (the duplicate check spans
    /// every session; the session lock does not).
    fn lock_request(&self, request_hash: B256) -> Result<(), LedgerError>;

    fn load_session(&self, session_id: B256) -> Result<Option<SessionRow>, LedgerError>;
    fn insert_session(&self, session_id: B256, limits: &Limits) -> Result<(), LedgerError>;
    fn store_baseline(&self, session_id: B256, baseline: &Baseline) -> Result<(), LedgerError>;
    fn set_revoked(&self, session_id: B256) -> Result<(), LedgerError>;

    fn load_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, LedgerError>;
    /// Reservations of one session, oldest first; `live_only` keeps pending and committed ones (the
    /// ones that can count against the caps).
    fn session_reservations(
        &self,
        session_id: B256,
        live_only: bool,
    ) -> Result<Vec<Reservation>, LedgerError>;
    /// A live (pending or committed) reservation for `request_hash`, any session.
    fn live_reservation_for(
        &self,
        request_hash: B256,
    ) -> Result<Option<(ReservationId, ReservationState)>, LedgerError>;
    /// Marks pending reservations with `expires_at <= now` as expired; `None` = every session.
    fn expire_pending(&self, session_id: Option<B256>, now: i64) -> Result<usize, LedgerError>;
    fn insert_reservation(
        &self,
        session_id: B256,
        request: &ReservationRequest,
        period_index: u32,
        expires_at: u64,
    ) -> Result<ReservationId, LedgerError>;
    fn set_committed(
        &self,
        id: ReservationId,
        settlement: &SettlementRecord,
    ) -> Result<(), LedgerError>;
    fn set_released(&self, id: ReservationId, reason: &str) -> Result<(), LedgerError>;
}
