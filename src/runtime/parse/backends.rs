//! `show backend`: a `# name` header, then one backend name per line (frontends are not listed).

use super::{lines, non_empty, ParseError};

const WHAT: &str = "show backend";

/// Parses a `show backend` body into the backend names, in HAProxy's order.
pub fn parse_backends(body: &[u8]) -> Result<Vec<String>, ParseError> {
    let all = lines(WHAT, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "empty reply"))?;
    if header.text != b"# name" {
        return Err(ParseError::new(
            WHAT,
            header.offset,
            "expected the header `# name`",
        ));
    }
    let mut names = Vec::with_capacity(all.len().saturating_sub(1));
    for line in it {
        non_empty(WHAT, line)?;
        let name = line.str(WHAT)?;
        // Proxy names never hold whitespace: a line that does is not this reply.
        if name.contains([' ', '\t']) {
            return Err(ParseError::new(
                WHAT,
                line.offset,
                "backend name holds a space",
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}
