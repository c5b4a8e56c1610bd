//! Fuzz `classify` and `raw::parse` for every reply kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::raw::parse;
use vezasock::runtime::command::ReplyKind;
use vezasock::runtime::parse::outcome::classify;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    for kind in ReplyKind::ALL {
        if let Ok(parsed) = parse(kind, data) {
            // Whatever parsed must also print as JSON (what `vezasock exec --json` does).
            let _ = serde_json::to_string(&parsed);
        }
    }
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = vezasock::runtime::command::raw::for_command_line(line);
    }
});
