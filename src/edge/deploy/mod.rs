//! What an operator runs to move traffic, each a sequence of the flip engine's phases
//! ([`crate::edge::flip`]): [`switch::switch`] (with its optional preview check and bake),
//! [`rollback::rollback`], the preview token ([`preview`]), the bake after a switch ([`bake`])
//! and the stepwise [`canary`].

pub mod bake;
pub mod canary;
pub mod preview;
pub mod rollback;
pub mod switch;
