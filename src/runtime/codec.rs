//! Framing: one reply per command, per framing mode.
