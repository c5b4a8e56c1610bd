//! Where to reach HAProxy: unix socket, TCP socket, master socket.
