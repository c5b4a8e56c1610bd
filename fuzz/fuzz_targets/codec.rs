//! Fuzz the reply codec: any bytes, in any framing, split at any point, decode without
//! panicking, never yield more bytes than they were given, and end in a frame or an error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vezasock::runtime::codec::{Framing, ReplyCodec};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let framing = match head % 3 {
        0 => Framing::OneShot,
        1 => Framing::Prompt,
        _ => Framing::MasterPrompt,
    };
    // A small bound too, so the TooLarge paths run.
    let max = if head & 0x80 != 0 { 64 } else { 1 << 20 };
    let mut codec = ReplyCodec::with_max_reply(framing, max);
    let split = if rest.is_empty() { 0 } else { usize::from(head) % rest.len() };
    let mut buf = BytesMut::new();
    let mut out = 0usize;
    for chunk in [&rest[..split], &rest[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out += frame.body.len(),
                Ok(None) | Err(_) => break,
            }
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        out += frame.body.len();
        if buf.is_empty() {
            break;
        }
    }
    assert!(out <= rest.len(), "decoded more bytes than received");
});
