//! Property checks of the control request decoder (`parse_request`, what the server makes
//! of a client's line), for the fuzz target (tests/fuzz/, `cfg(fuzzing)`) and for the replay
//! of its committed corpus in the test build (`tests/pure/fuzz_corpus.rs`, `sim` feature); never
//! part of the shipped binary. It does not touch sockets: the server's bounds (line length,
//! drain, timeouts) are tested on real sockets elsewhere.

use super::{Format, Request, parse_request};

/// Checks `data` as a request line. A request that parses is UTF-8 and is what its words
/// say: written back in its canonical form (the line `hapair` sends) it has the same words,
/// and parses to the same request, with and without the newline. Only `status` is open to
/// others than root. True when it parsed.
pub fn request(data: &[u8]) -> bool {
    let Ok(request) = parse_request(data) else {
        return false;
    };
    let Ok(text) = core::str::from_utf8(data) else {
        panic!("a request that is not UTF-8 parsed: {data:?}");
    };
    let line = canonical(&request);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    assert_eq!(words.join(" "), line, "{text:?} was taken for {request:?}");
    assert!(line.starts_with(request.verb()), "{line:?} is not a {}", request.verb());
    assert_eq!(parse_request(line.as_bytes()).as_ref(), Ok(&request), "{line:?}");
    let with_newline = format!("{line}\n");
    assert_eq!(parse_request(with_newline.as_bytes()).as_ref(), Ok(&request), "{line:?}");
    assert_eq!(request.needs_root(), !matches!(request, Request::Status(_)), "{line:?}");
    true
}

/// The line `hapair` sends for `request`.
fn canonical(request: &Request) -> String {
    match request {
        Request::Status(Format::Human) => "status".into(),
        Request::Status(Format::Json) => "status json".into(),
        Request::Status(Format::Prometheus) => "status prometheus".into(),
        Request::Standby => "standby".into(),
        Request::Online => "online".into(),
        Request::Takeover => "takeover".into(),
        Request::TakeoverForce => "takeover force".into(),
        Request::TakeoverGroup(name) => format!("takeover-group {name}"),
        Request::Move(name) => format!("move {name}"),
        Request::Maintenance(on) => format!("maintenance {}", if *on { "on" } else { "off" }),
        Request::Cleanup(None) => "cleanup".into(),
        Request::Cleanup(Some(name)) => format!("cleanup {name}"),
        Request::OutdatePeer(name) => format!("outdate-peer {name}"),
    }
}
