//! vezasock: drives a shared HAProxy edge for blue/green deploys over the runtime API.
//!
//! Data flows one way, and the modules follow it:
//! `topology` (what the edge is) → `render` (haproxy.cfg, maps, shape) → `plan` (what to change)
//! → `runtime` (the HAProxy runtime API client) → `state` (files, lock, journal, history)
//! → `edge` (switch, drain, status, apply, reload on a live edge) → `cli` (the `vezasock`
//! commands) and `demo` (the same operations on a local edge). A module never reaches back up
//! the chain.
//! `files` (crash-safe file writes) sits outside the chain: render and state both use it.

pub mod cli;
pub mod demo;
pub mod edge;
pub mod exit;
pub mod files;
pub mod plan;
pub mod render;
pub mod runtime;
pub mod state;
pub mod topology;
