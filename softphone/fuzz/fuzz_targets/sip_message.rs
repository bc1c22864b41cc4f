//! SIP bytes from the network: the datagram parser, the rejection builder
//! and the stream decoder must never panic, and what parses must serialise
//! and parse back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softphone::sip::wire::{
    parse_datagram, parse_message, reject_response, serialize, Frame, Incoming, StreamDecoder,
};

fuzz_target!(|data: &[u8]| {
    match parse_datagram(data) {
        Ok(Incoming::Message(message)) => {
            let written = serialize(&message);
            assert_eq!(parse_message(&written).as_ref(), Ok(&message), "round trip");
        }
        Ok(Incoming::KeepAlive(_)) => {}
        Err(error) => {
            if let Some(response) = reject_response(data, &error, "fuzz") {
                assert!(response.ends_with(b"\r\nContent-Length: 0\r\n\r\n"));
            }
        }
    }
    // The first byte picks the read size, so splits land everywhere.
    let chunk = usize::from(data.first().copied().unwrap_or(1).max(1));
    let mut decoder = StreamDecoder::with_limit(8192);
    for piece in data.chunks(chunk) {
        if decoder.push(piece).is_err() {
            return;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Message(frame))) => {
                    let _ = parse_message(&frame);
                }
                Ok(Some(Frame::KeepAlive(_))) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
