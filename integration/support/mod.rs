//! What the integration tests (integration/main.rs) and the benches share, in one place: the
//! HAProxy versions and `per_version!` ([`haproxy`]), running the binary ([`run`]), the
//! variables it must not inherit ([`env`]), loopback ports ([`ports`]), a local edge that is
//! not started ([`fresh`]; the started one is `vezasock::demo::LocalEdge`), topology files
//! ([`topology`]) and a bounded load ([`load`]). The benches include this file by path
//! (`#[path = "../integration/support/mod.rs"] mod support;`), so it is always mounted at
//! `crate::support`.

pub mod env;
pub mod faultproxy;
pub mod fresh;
pub mod haproxy;
pub mod load;
pub mod ports;
pub mod run;
pub mod tmpfs;
pub mod topology;
