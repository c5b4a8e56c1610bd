//! Typed, validated runtime API commands.
