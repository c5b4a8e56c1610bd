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

fn one_word(name: &str) -> String {
    name.chars()
        .take(WHO_MAX)
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::one_word;

    #[test]
    fn a_name_becomes_one_bounded_word() {
        assert_eq!(one_word("ci deploy\tjob"), "ci-deploy-job");
        assert_eq!(one_word(&"x".repeat(100)).len(), super::WHO_MAX);
    }
}
