//! provider-desk: the backend of the service providers' mini-program.
//!
//! Layers, from the edge inwards: [`http`] (router, ops endpoints), [`rest`] (the spec's `/api`
//! endpoints as GraphQL operations) and [`graphql`] (schema, thin resolvers, loaders); [`service`]
//! (every business rule); [`store`] (the storage port and its adapters); [`domain`] (types and
//! pure rules). [`app`] wires them; [`config`] reads settings.

pub mod app;
pub mod bus;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod request_id;
pub mod rest;
pub mod seed;
pub mod service;
pub mod store;
