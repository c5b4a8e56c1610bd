//! Who is acting, in one word: the name every journal line, history line and lock holder
//! carries, so a switch and the drain it triggers name the same actor.

/// `VEZASOCK_WHO` (e.g. set by CI to the job name), else `USER`, else `LOGNAME`, else
/// `uid-<n>`. Whitespace inside is replaced by `-`: the history's who-field ends its line,
/// and a playbook splitting the line on spaces must read one word.
pub fn who() -> String {
    for var in ["VEZASOCK_WHO", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if !v.is_empty() && !v.chars().any(char::is_control) {
                return one_word(v);
            }
        }
    }
    format!("uid-{}", rustix::process::getuid().as_raw())
}

/// The most characters of a name kept (a CI job name, a user name).
pub const WHO_MAX: usize = 64;

/// Checks a `who` that came from outside (an edge-agent request): what [`who`] makes of a
/// name, one word of at most [`WHO_MAX`] characters without a control character, is what the
/// history and journal lines may carry.
pub fn check_who(who: &str) -> Result<(), super::Error> {
    let ok = !who.is_empty()
        && who.chars().count() <= WHO_MAX
        && !who.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        return Ok(());
    }
    Err(super::Error::BadValue {
        what: "who",
        value: who.chars().take(80).collect(),
        why: "use one word of 1 to 64 characters, without spaces or control characters",
    })
}

fn one_word(name: &str) -> String {
    name.chars()
        .take(WHO_MAX)
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{check_who, one_word};

    #[test]
    fn who_from_outside_is_one_bounded_word() {
        assert!(check_who("ci-deploy").is_ok());
        assert!(check_who(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            "a b c",
            "x\u{0}y",
            "a\nb",
            &"x".repeat(65),
            &"y".repeat(10_000),
        ] {
            assert!(check_who(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_becomes_one_bounded_word() {
        assert_eq!(one_word("ci deploy\tjob"), "ci-deploy-job");
        assert_eq!(one_word(&"x".repeat(100)).len(), super::WHO_MAX);
    }
}
