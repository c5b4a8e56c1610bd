//! Fuzz `show ssl cert` (list and details): never panics; parsed details print back to equal
//! ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vezasock::runtime::command::ssl::{parse_ssl_cert, parse_ssl_cert_list};

fuzz_target!(|data: &[u8]| {
    let _ = parse_ssl_cert_list(data);
    if let Ok(cert) = parse_ssl_cert(data) {
        let mut text = String::new();
        for field in &cert.fields {
            text.push_str(&format!("{}: {}\n", field.key, field.value));
        }
        text.push('\n');
        assert_eq!(parse_ssl_cert(text.as_bytes()).ok(), Some(cert));
    }
});
