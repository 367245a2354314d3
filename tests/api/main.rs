//! The API tests: the real application started in this process on a random port against a fresh
//! store (`support::TestApp`), driven over HTTP and WebSocket like a client. One binary for every
//! area, so the shared support code and the crate are compiled and linked once.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod auth;
mod bad_input;
mod canned_replies;
mod chat;
mod chat_keyset;
mod customers;
mod idempotency;
mod inbox;
mod integration;
mod introspection;
mod ipv6_limits;
mod keywords;
mod limiter_ceiling;
mod limits;
mod lockout;
mod notifications;
mod openapi;
mod ops;
mod outbound_tls;
mod pc_system;
mod playground;
mod realtime;
mod refresh_retry;
mod replay_window;
mod rest;
mod schema;
mod search;
mod security;
mod sign_in_lockout;
mod sla;
mod slow_clients;
mod smoke;
mod tickets;
mod typing;
mod uploads;
mod ws_operations;
