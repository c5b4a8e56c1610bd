//! Tests against real HAProxy processes (2.6, 3.0, 3.2).
