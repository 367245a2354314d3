//! provider-desk: the backend of the service providers' mini-program.
//!
//! Layers, from the edge inwards: [`http`] (router, ops endpoints), [`rest`] (the spec's `/api`
//! endpoints as GraphQL operations) and [`graphql`] (schema, thin resolvers, loaders); [`service`]
//! (every business rule); [`store`] (the storage port and its adapters); [`domain`] (types and
//! pure rules); [`integration`] (the adapters to the other systems, the outbox dispatcher and the
//! job scheduler). [`app`] wires them; [`config`] reads settings; [`metrics`] and [`telemetry`] are
//! what operators see (`/metrics`, the log); [`context`] is the request being handled (its id).

pub mod app;
pub mod bus;
pub mod config;
pub mod context;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod integration;
pub mod limits;
pub mod metrics;
pub mod rest;
pub mod seed;
pub mod service;
pub mod store;
pub mod telemetry;
