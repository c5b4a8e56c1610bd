//! `[notify] webhook`: where vezasock's events go (src/edge/notify.rs sends them), checked
//! when the topology is read.

/// Where events go: an `http://` or `https://` `host[:port]/path` URL, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `https://`: the events go over TLS, the server checked against `host`.
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Webhook {
    /// Parses `http[s]://host[:port][/path]` (port 80 or 443 by default); anything else (user
    /// info, spaces, over 2048 bytes) is refused with why. The why never quotes the URL: it may
    /// hold a secret.
    pub fn parse(url: &str) -> Result<Webhook, String> {
        if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(
                "a webhook URL: at most 2048 bytes, no spaces or control characters".into(),
            );
        }
        let (tls, rest, default_port) =
            match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
                (Some(rest), _) => (false, rest, 80),
                (_, Some(rest)) => (true, rest, 443),
                _ => return Err("a webhook URL starting with http:// or https://".into()),
            };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err("a webhook URL with a host and no user info".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p.parse::<u16>().ok().filter(|p| *p > 0);
                (
                    h,
                    port.ok_or_else(|| "a webhook port: 1 to 65535".to_string())?,
                )
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("a webhook URL with a host".into());
        }
        Ok(Webhook {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The URL without its path (where a secret may be): what messages and the journal show.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}/…", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Webhook::parse("http://127.0.0.1:9000/hooks/T1/secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.path, "/hooks/T1/secret");
        assert_eq!(t.shown(), "http://127.0.0.1:9000/…");
        assert!(!t.shown().contains("secret"));
        assert_eq!(
            Webhook::parse("http://example.org").map(|t| (t.port, t.path)),
            Ok((80, "/".to_string()))
        );
        assert_eq!(
            Webhook::parse("http://[::1]:81/x").map(|t| (t.host, t.port)),
            Ok(("::1".to_string(), 81))
        );
        for bad in [
            "https://",
            "https://u@h/x",
            "https://h:0/x",
            "httpss://h/x",
            "ftp://h",
            "http://",
            "http://u:p@h/x",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "h/x",
        ] {
            assert!(Webhook::parse(bad).is_err(), "{bad}");
        }
    }

    /// `https://` is taken, port 443 by default, and shown with its scheme (never its path).
    #[test]
    fn https_urls() {
        let t = Webhook::parse("https://hooks.slack.com/services/T1/B2/secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port), ("hooks.slack.com", 443));
        assert_eq!(t.path, "/services/T1/B2/secret");
        assert_eq!(t.shown(), "https://hooks.slack.com:443/…");
        let t = Webhook::parse("https://127.0.0.1:8443").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 8443, "/"));
        let plain = Webhook::parse("http://h/x").unwrap_or_else(|e| panic!("{e}"));
        assert!(!plain.tls);
    }

    proptest::proptest! {
        #[test]
        fn any_url_parses_or_not_without_a_panic(s in "\\PC{0,60}") {
            let _ = Webhook::parse(&s);
            let _ = Webhook::parse(&format!("http://{s}"));
            let _ = Webhook::parse(&format!("https://{s}"));
        }
    }
}
