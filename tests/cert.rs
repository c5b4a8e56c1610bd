//! Certificates without HAProxy: the PEM checks `cert update` runs before anything changes
//! (certificates made here with rcgen), the placeholder, the payload `set ssl cert` sends, and
//! the write replies recorded from real 2.6, 3.0, 3.2 and 3.4 (`grammar/corpus-ssl/*/*-write.oneshot`).

#[path = "support/versions.rs"]
mod versions;

use vezasock::edge::cert::{
    check_for_edge, covers, domain_set, ensure_placeholder_in, inspect, placeholder_pem,
    PLACEHOLDER_FILE,
};
use vezasock::runtime::command::ssl::{payload_too_big, CertPayload, CertRef, SslWrite};
use vezasock::runtime::version::Version;
use vezasock::runtime::Error;
use vezasock::topology::Topology;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn cert(
    names: &[&str],
    alg: &'static rcgen::SignatureAlgorithm,
    days: (i64, i64),
    other_key: bool,
) -> String {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from(vec![0x00, 0xAB, 0x01]));
    let t = time::OffsetDateTime::now_utc();
    params.not_before = t + time::Duration::days(days.0);
    params.not_after = t + time::Duration::days(days.1);
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let c = params.self_signed(&key).unwrap();
    let k = if other_key {
        rcgen::KeyPair::generate_for(alg).unwrap().serialize_pem()
    } else {
        key.serialize_pem()
    };
    format!("{}{}", c.pem(), k)
}

fn domains() -> Vec<String> {
    vec!["veza.fr".to_string(), "www.veza.fr".to_string()]
}

#[test]
fn a_good_certificate_passes_for_every_key_kind() {
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let pem = cert(&["veza.fr"], alg, (-1, 30), false);
        let info = inspect(pem.as_bytes()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(
            info.serial, "AB01",
            "leading zeros dropped as HAProxy prints it"
        );
        assert_eq!(info.domains, vec!["veza.fr"]);
        assert!(!info.placeholder);
        assert!(info.days_left(now()) >= 29 && info.days_left(now()) <= 30);
        check_for_edge(&info, &domains(), false, now()).unwrap();
    }
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
        let pem = cert(&["veza.fr"], alg, (-1, 30), true);
        let err = inspect(pem.as_bytes()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }
}

#[test]
fn broken_or_incomplete_pems_are_refused_with_what_is_missing() {
    let good = cert(
        &["veza.fr"],
        &rcgen::PKCS_ECDSA_P256_SHA256,
        (-1, 30),
        false,
    );
    let cert_only: String = good
        .split_inclusive('\n')
        .take_while(|l| !l.contains("END CERTIFICATE"))
        .collect::<String>()
        + "-----END CERTIFICATE-----\n";
    let key_only = &good[good.find("-----BEGIN PRIVATE KEY").unwrap()..];
    for (pem, want) in [
        ("", "no certificate"),
        ("garbage\n", "no certificate"),
        (cert_only.as_str(), "no private key"),
        (key_only, "no certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "",
        ),
    ] {
        let err = inspect(pem.as_bytes()).unwrap_err();
        assert!(err.contains(want), "{pem:?}: {err}");
    }
    // Bytes that are not text at all never panic.
    for bytes in [&[0xff, 0xfe, 0][..], b"-----BEGIN CERTIFICATE-----\n\xff\n"] {
        assert!(inspect(bytes).is_err());
    }
}

#[test]
fn expired_not_yet_valid_and_foreign_certificates_are_refused() {
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let expired = inspect(cert(&["veza.fr"], alg, (-60, -1), false).as_bytes()).unwrap();
    let err = check_for_edge(&expired, &domains(), false, now()).unwrap_err();
    assert!(err.contains("expired"), "{err}");
    let early = inspect(cert(&["veza.fr"], alg, (2, 60), false).as_bytes()).unwrap();
    let err = check_for_edge(&early, &domains(), false, now()).unwrap_err();
    assert!(err.contains("not valid yet"), "{err}");
    let foreign = inspect(cert(&["other.example"], alg, (-1, 60), false).as_bytes()).unwrap();
    let err = check_for_edge(&foreign, &domains(), false, now()).unwrap_err();
    assert!(
        err.contains("--allow-other-domains") && err.contains("other.example"),
        "{err}"
    );
    check_for_edge(&foreign, &domains(), true, now()).unwrap();
    // A wildcard covers the edge's hosts one label deep.
    let wild = inspect(cert(&["*.veza.fr"], alg, (-1, 60), false).as_bytes()).unwrap();
    check_for_edge(&wild, &["www.veza.fr".to_string()], false, now()).unwrap();
    assert!(!covers("*.veza.fr", "veza.fr"));
}

#[test]
fn the_placeholder_covers_the_domain_set_and_never_overwrites() {
    let topo = Topology::embedded_default().unwrap();
    let set = domain_set(&topo);
    for host in [
        "staging.veza.fr",
        "veza.fr",
        "www.veza.fr",
        "forgejo.talas.group",
    ] {
        assert!(set.iter().any(|d| d == host), "{host} missing from {set:?}");
    }
    let pem = placeholder_pem(&set).unwrap();
    let info = inspect(pem.as_bytes()).unwrap();
    assert!(info.placeholder);
    assert_eq!(info.domains, set);

    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let written = ensure_placeholder_in(&certs, &set).unwrap();
    assert_eq!(written, Some(certs.join(PLACEHOLDER_FILE)));
    let first = std::fs::read(certs.join(PLACEHOLDER_FILE)).unwrap();
    // Present already: not written again.
    assert_eq!(ensure_placeholder_in(&certs, &set).unwrap(), None);
    assert_eq!(std::fs::read(certs.join(PLACEHOLDER_FILE)).unwrap(), first);

    // A real certificate for one of the domains: no placeholder, and a real file in the
    // placeholder's name is never replaced.
    let other = dir.path().join("real");
    std::fs::create_dir_all(&other).unwrap();
    let real = cert(
        &["veza.fr"],
        &rcgen::PKCS_ECDSA_P256_SHA256,
        (-1, 30),
        false,
    );
    std::fs::write(other.join("veza.pem"), &real).unwrap();
    assert_eq!(ensure_placeholder_in(&other, &set).unwrap(), None);
    assert!(!other.join(PLACEHOLDER_FILE).exists());
    let third = dir.path().join("third");
    std::fs::create_dir_all(&third).unwrap();
    std::fs::write(third.join(PLACEHOLDER_FILE), "operator's own file\n").unwrap();
    assert_eq!(ensure_placeholder_in(&third, &set).unwrap(), None);
    assert_eq!(
        std::fs::read_to_string(third.join(PLACEHOLDER_FILE)).unwrap(),
        "operator's own file\n"
    );
}

#[test]
fn the_payload_has_no_empty_line_no_cr_and_fits_haproxys_buffer() {
    let p = CertPayload::new("-----BEGIN X-----\r\n\r\nAAAA\r\n\n  \n-----END X-----").unwrap();
    assert_eq!(p.as_str(), "-----BEGIN X-----\nAAAA\n-----END X-----\n");
    let cert = CertRef::new("/etc/haproxy/certs/veza.pem").unwrap();
    let set = SslWrite::Set(cert.clone(), p);
    // The line, the payload, and the empty line that ends it.
    assert_eq!(
        set.text(),
        "set ssl cert /etc/haproxy/certs/veza.pem <<\n-----BEGIN X-----\nAAAA\n-----END X-----\n\n"
    );
    assert_eq!(set.line(), "set ssl cert /etc/haproxy/certs/veza.pem <<");
    assert!(matches!(
        CertPayload::new("a\u{1b}b"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(CertPayload::new("\n\n").is_err());
    // A long chain (RSA 4096 with its intermediates) fits every version; 15 KiB only fits
    // 3.4's payload limit (128 KiB), not the 16 KiB buffer older versions share with the line;
    // past 3.4's limit no version takes it.
    let v = |raw: &str| Version::parse(raw).unwrap();
    let chain = CertPayload::new(&"A".repeat(12 * 1024)).unwrap();
    let big = CertPayload::new(&"A".repeat(15 * 1024)).unwrap();
    for old in ["2.6.12-1+deb12u4", "3.0.11-1+deb13u5", "3.2.26-1"] {
        assert!(payload_too_big(&chain, &v(old)).is_none(), "{old}");
        let why = payload_too_big(&big, &v(old)).unwrap_or_else(|| panic!("{old}"));
        assert!(why.contains("less than 15 KiB"), "{old}: {why}");
    }
    assert!(payload_too_big(&big, &v("3.4.7-1")).is_none());
    let biggest = CertPayload::new(&"A".repeat(127 * 1024 - 2)).unwrap();
    assert!(payload_too_big(&biggest, &v("3.4.7-1")).is_none());
    assert!(CertPayload::new(&"A".repeat(127 * 1024)).is_err());
    // A name that would inject a second command or switch to payload mode is refused.
    for bad in ["a b", "a;b", "a\nb", "<<x", ""] {
        assert!(CertRef::new(bad).is_err(), "{bad:?}");
    }
    let list = CertRef::new("/etc/haproxy/certs").unwrap();
    assert_eq!(
        SslWrite::AddCrtList { list, cert }.text(),
        "add ssl crt-list /etc/haproxy/certs /etc/haproxy/certs/veza.pem\n"
    );
}

#[test]
fn write_replies_recorded_from_every_version_read_as_haproxy_meant_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus-ssl");
    let c = CertRef::new("/x/certs/new.pem").unwrap();
    let list = CertRef::new("/x/certs").unwrap();
    let payload = CertPayload::new("A\n").unwrap();
    for version in versions::RECORDED {
        let read = |file: &str| {
            std::fs::read(root.join(version).join(file))
                .unwrap_or_else(|e| panic!("{version}/{file}: {e}"))
        };
        let ok = [
            ("new-ssl-cert-write.oneshot", SslWrite::New(c.clone())),
            (
                "set-ssl-cert-write.oneshot",
                SslWrite::Set(c.clone(), payload.clone()),
            ),
            (
                "set-ssl-cert-again-write.oneshot",
                // Recorded for another certificate: the reply names the one set.
                SslWrite::Set(CertRef::new("/x/site.pem").unwrap(), payload.clone()),
            ),
            ("commit-ssl-cert-write.oneshot", SslWrite::Commit(c.clone())),
            (
                "add-ssl-crt-list-write.oneshot",
                SslWrite::AddCrtList {
                    list: list.clone(),
                    cert: c.clone(),
                },
            ),
            ("abort-ssl-cert-write.oneshot", SslWrite::Abort(c.clone())),
            (
                "del-ssl-crt-list-write.oneshot",
                SslWrite::DelCrtList {
                    list: list.clone(),
                    cert: c.clone(),
                },
            ),
            ("del-ssl-cert-write.oneshot", SslWrite::DelCert(c.clone())),
        ];
        for (file, write) in &ok {
            write
                .check_reply(&read(file))
                .unwrap_or_else(|e| panic!("{version}/{file}: {e}"));
        }
        let refused = [
            (
                "set-ssl-cert-bad-write.oneshot",
                SslWrite::Set(c.clone(), payload.clone()),
                "Can't update",
            ),
            (
                "commit-ssl-cert-none-write.oneshot",
                SslWrite::Commit(c.clone()),
                "No ongoing transaction",
            ),
            (
                "del-ssl-crt-list-default-write.oneshot",
                SslWrite::DelCrtList {
                    list: list.clone(),
                    cert: c.clone(),
                },
                "default certificate",
            ),
        ];
        for (file, write, want) in &refused {
            match write.check_reply(&read(file)) {
                Err(Error::Refused { message, .. }) => {
                    assert!(message.contains(want), "{version}/{file}: {message}")
                }
                other => panic!("{version}/{file}: {other:?}"),
            }
        }
        // Each success sentence belongs to its own command only.
        assert!(SslWrite::Commit(c.clone())
            .check_reply(&read("new-ssl-cert-write.oneshot"))
            .is_err());
        assert!(SslWrite::New(c.clone()).check_reply(b"").is_err());
    }
    // 2.6, with another certificate's transaction open, puts the payload into that one and
    // says so: a refusal for this certificate (3.x refuses itself).
    let other = b"Transaction updated for certificate /x/certs/00-default.pem!\n\n";
    match SslWrite::Set(c.clone(), payload.clone()).check_reply(other) {
        Err(Error::Refused { message, .. }) => {
            assert!(message.contains("abort ssl cert"), "{message}")
        }
        got => panic!("{got:?}"),
    }
}

/// Standard base64 with padding (PEM bodies), for the SEC1 key below.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A P-256 key as SEC1 (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes): the
/// ECPrivateKey inside rcgen's PKCS#8.
fn sec1_pem(key: &rcgen::KeyPair) -> String {
    use x509_parser::der_parser::ber::BerObjectContent;
    let der = key.serialize_der();
    let (_, obj) = x509_parser::der_parser::parse_der(&der).unwrap();
    let BerObjectContent::Sequence(items) = obj.content else {
        panic!("PKCS#8 is a sequence")
    };
    let inner = items[2].as_slice().unwrap();
    let body: Vec<String> = base64(inner)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        body.join("\n")
    )
}

#[test]
fn a_sec1_key_is_matched_by_its_public_point() {
    let params = rcgen::CertificateParams::new(vec!["veza.fr".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let c = params.self_signed(&key).unwrap();
    let pem = format!("{}{}", c.pem(), sec1_pem(&key));
    inspect(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{pem}"));
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = format!("{}{}", c.pem(), sec1_pem(&other));
    let err = inspect(pem.as_bytes()).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
}
