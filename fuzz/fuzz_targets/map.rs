//! Fuzz the map replies: `show map` list and entries, `get map`, `prepare map`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::maps::{
    parse_get_map, parse_map_entries, parse_map_list, parse_prepare_map,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_map_list(data);
    let _ = parse_map_entries(data);
    if let Ok(got) = parse_get_map(data) {
        assert_eq!(
            got.found,
            got.fields.iter().any(|(k, v)| k == "found" && v == "yes")
        );
    }
    let _ = parse_prepare_map(data);
});
