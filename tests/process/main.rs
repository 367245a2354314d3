//! The process tests: what only a whole process shows or needs, so the server runs as the built
//! binary (`support::ServerProcess`) or beside servers the test starts and kills: the `/metrics`
//! registry (one per process), the log lines, graceful shutdown on a signal, the CLI, what a public
//! bind changes (demo accounts, `/metrics` access), two processes
//! sharing one Redis, the backends failing under a running server, the external fuzzer, the
//! mini-program's client kit run under Node against the server, a
//! store written by an older release opened by this one, and the allocator's setup.

#[path = "../support/mod.rs"]
mod support;

mod bus;
mod cli;
mod client_kit;
mod exposure;
mod faults;
mod lockout;
mod logs;
mod memory;
mod metrics;
mod migration;
mod retention;
mod schemathesis;
mod secrets;
mod shutdown;
mod sla;
mod typing;
mod webhook_bans;
