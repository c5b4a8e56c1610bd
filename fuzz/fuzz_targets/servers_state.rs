//! Fuzz `show servers state`: never panics; a parsed dump survives `to_text` and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::servers::parse_servers_state;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = parse_servers_state(data) {
        let again = parse_servers_state(state.to_text().as_bytes());
        // Names holding a `-` alone print as "empty": the only lossy case.
        if state
            .rows
            .iter()
            .all(|r| r.be_name != "-" && r.srv_name != "-")
        {
            assert_eq!(again.ok(), Some(state));
        }
    }
});
