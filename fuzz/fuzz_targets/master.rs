//! Fuzz the master CLI replies: `show proc` and `reload`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::master::{parse_proc, parse_reload};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = parse_proc(data) {
        assert_eq!(list.master.kind, "master");
    }
    let _ = parse_reload(data);
});
