//! Fuzz `show info`: never panics; a parsed reply prints back to an equal one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::info::parse_info;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_info(data) {
        let mut text = String::new();
        for (key, value) in &info.fields {
            text.push_str(&format!("{key}: {value}\n"));
        }
        text.push('\n');
        assert_eq!(parse_info(text.as_bytes()).ok(), Some(info));
    }
});
