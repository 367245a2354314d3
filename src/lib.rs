//! provider-desk: the backend of the service providers' mini-program.
//!
//! The modules are layered, lowest first; a module uses only the ones below it (`scripts/check-layers`
//! fails CI otherwise, so there are no import cycles):
//!
//! 1. [`domain`] (types and pure rules), [`metrics`] (the registry operators scrape) and
//!    [`allocator`] (the binary's memory allocator);
//! 2. [`context`]: the request being handled (its id, its provider, a bad request noted);
//! 3. [`error`]: the one error type, rendered once per protocol;
//! 4. [`config`]: settings, read once from the environment;
//! 5. [`telemetry`]: the log subscriber;
//! 6. [`store`]: the storage ports by area and their adapters (`sqlite`, `mongo`);
//! 7. [`limits`]: the limiter port and the abuse policy over it;
//! 8. [`service`]: every business rule, with its ports for WeChat and the bus;
//! 9. [`redis`]: the Redis adapters (tokens, limiter, bus);
//! 10. [`integration`]: the adapters to the other systems, the outbox dispatcher, the job scheduler;
//! 11. [`graphql`] (schema, thin resolvers, loaders), then [`rest`] (the spec's `/api` endpoints as
//!     GraphQL operations), then [`http`] (router, edge, ops endpoints);
//! 12. [`seed`] (the demo data) and [`app`], which wires everything.

pub mod allocator;
pub mod app;
pub mod config;
pub mod context;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod integration;
pub mod limits;
pub mod metrics;
pub mod redis;
pub mod rest;
pub mod seed;
pub mod service;
pub mod store;
pub mod telemetry;
