//! `get weight <backend>/<server>`: `<current> (initial <initial>)`.

use nom::bytes::complete::tag;
use nom::character::complete::u32 as decimal;
use nom::combinator::{all_consuming, opt};
use nom::sequence::{delimited, terminated, tuple};
use nom::IResult;
use serde::Serialize;

use super::ParseError;

const WHAT: &str = "get weight";

/// A server's weight now and in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Weight {
    /// Effective weight (0..=256).
    pub current: u32,
    /// Weight from the configuration, which `N%` values are relative to.
    pub initial: u32,
}

fn weight(input: &[u8]) -> IResult<&[u8], Weight> {
    let (rest, (current, initial)) = all_consuming(terminated(
        tuple((decimal, delimited(tag(" (initial "), decimal, tag(")\n")))),
        opt(tag("\n")),
    ))(input)?;
    Ok((rest, Weight { current, initial }))
}

/// Parses `100 (initial 100)\n\n`.
pub fn parse_weight(body: &[u8]) -> Result<Weight, ParseError> {
    weight(body)
        .map(|(_, w)| w)
        .map_err(|_| ParseError::new(WHAT, 0, "expected `<current> (initial <initial>)`"))
}
