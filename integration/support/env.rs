//! The environment variables a test run of the binary must not inherit.

/// The variables that would point the binary at another edge than the one given.
pub const EDGE_ENV_VARS: [&str; 12] = [
    "VEZASOCK_CONFIG",
    "VEZASOCK_HAPROXY_CONFIG",
    "VEZASOCK_MAPS_DIR",
    "VEZASOCK_ADMIN_SOCKET",
    "VEZASOCK_OPERATOR_SOCKET",
    "VEZASOCK_MASTER_SOCKET",
    "VEZASOCK_SERVER_STATE_FILE",
    "VEZASOCK_STATE_DIR",
    "VEZASOCK_HAPROXY",
    "VEZASOCK_PID_FILE",
    "VEZASOCK_RELOAD_METHOD",
    "VEZASOCK_CRASH_AT",
];

/// The fleet file and the fleet's test hooks: set by a test for one run, never inherited.
pub const FLEET_ENV_VARS: [&str; 3] =
    ["VEZASOCK_FLEET", "VEZASOCK_PAUSE_AT", "VEZASOCK_PAUSE_FILE"];
