//! A persistent session and pipelined batches.
