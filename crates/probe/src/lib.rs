//! initbox's readiness probes, shared by the wait applets and `network-check`: each one asks a
//! service in its own protocol whether it is ready, as a [`initbox_runtime::wait::Probe`].
//!
//! - [`tcp`], [`dns`]: always built;
//! - [`http`] (feature `http`): status, body and JSON expectations;
//! - [`sql`], [`redis`], [`amqp`], [`nats`], [`mqtt`], [`local`] (`file://`, `unix://`,
//!   `exec:`), and [`net`], the connection plumbing they share (feature `services`).

pub mod dns;
pub mod tcp;

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "services")]
pub mod amqp;
#[cfg(feature = "services")]
pub mod local;
#[cfg(feature = "services")]
pub mod mqtt;
#[cfg(feature = "services")]
pub mod nats;
#[cfg(feature = "services")]
pub mod net;
#[cfg(feature = "services")]
pub mod redis;
#[cfg(feature = "services")]
pub mod sql;
