//! Fuzz `show stat`: never panics; every parsed row has one field per column.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::stat::parse_stat;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = parse_stat(data) {
        for row in table.iter() {
            assert_eq!(row.row().len(), table.columns.len());
            let _ = (row.pxname(), row.status(), row.scur(), row.kind());
        }
    }
});
