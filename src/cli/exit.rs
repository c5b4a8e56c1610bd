//! The exit codes of every `vezasock` command: the table lives in [`crate::exit`] (the edge
//! layer's errors pick their code there); the CLI uses it from here.

pub use crate::exit::Exit;
