//! One module per subcommand group; `main` only parses and dispatches.

mod account;
pub(crate) mod console;
mod devnet;
mod facilitator;
mod pay;
mod session;

pub(crate) use account::{AccountCommand, account};
pub(crate) use console::{ConsoleArgs, console};
pub(crate) use devnet::{DevnetCommand, devnet};
pub(crate) use facilitator::facilitator;
pub(crate) use pay::{PayArgs, pay};
pub(crate) use session::{SessionAccount, SessionCommand, session};
