//! The `:authority` rewrite on header blocks as grpcurl and grpcio write them.

use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A literal `:authority` with incremental indexing, Huffman-coded as grpc-go does.
fn authority_literal(value: &str) -> Vec<u8> {
    let mut coded = Vec::new();
    httlib_huffman::encode(value.as_bytes(), &mut coded).unwrap();
    let mut out = vec![0x41];
    encode_int(&mut out, 0x80, 7, coded.len() as u64);
    out.extend_from_slice(&coded);
    out
}

fn run(input: &[u8]) -> Vec<u8> {
    let mut parser = Parser::default();
    let mut out = Vec::new();
    parser.feed(input, &mut out).unwrap();
    out
}

/// What grpcurl sends: the preface, SETTINGS, then a request whose `:authority`
/// is the socket path; then a second request naming that entry by its index.
fn grpcurl_like(authority: &str) -> Vec<u8> {
    let mut input = PREFACE.to_vec();
    input.extend(frame(0x4, 0, 0, &[]));
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    block.extend(authority_literal(authority));
    block.push(0x44); // :path, literal with indexing
    block.extend([0x05]);
    block.extend(b"/a/Bc");
    input.extend(frame(HEADERS, END_HEADERS, 1, &block));
    input.extend(frame(0x0, 0x1, 1, b"\0\0\0\0\0"));
    input.extend(frame(HEADERS, END_HEADERS, 3, &[0x83, 0x86, 0xBF, 0xBE]));
    input
}

#[test]
fn a_socket_path_authority_becomes_one_of_the_same_length() {
    let out = run(&grpcurl_like("/tmp/x/admin.sock"));
    let mut expected = PREFACE.to_vec();
    expected.extend(frame(0x4, 0, 0, &[]));
    let mut block = vec![0x83, 0x86, 0x41, 17];
    block.extend(b"-tmp-x-admin.sock");
    block.extend([0x44, 0x05]);
    block.extend(b"/a/Bc");
    expected.extend(frame(HEADERS, END_HEADERS, 1, &block));
    expected.extend(frame(0x0, 0x1, 1, b"\0\0\0\0\0"));
    expected.extend(frame(HEADERS, END_HEADERS, 3, &[0x83, 0x86, 0xBF, 0xBE]));
    assert_eq!(out, expected);
}

#[test]
fn a_valid_authority_and_every_other_frame_go_through_untouched() {
    let input = grpcurl_like("localhost:7443");
    assert_eq!(run(&input), input);
}

#[test]
fn bytes_arriving_one_at_a_time_give_the_same_stream() {
    let input = grpcurl_like("./mart-data/admin.sock");
    let mut parser = Parser::default();
    let mut out = Vec::new();
    for byte in &input {
        parser.feed(std::slice::from_ref(byte), &mut out).unwrap();
    }
    assert_eq!(out, run(&input));
}

#[test]
fn padding_priority_and_continuation_frames_are_folded_into_one_block() {
    let mut block = vec![0x82];
    block.extend(authority_literal("/run/mart/admin.sock"));
    let (a, b) = block.split_at(3);
    let mut headers = vec![2u8]; // pad length
    headers.extend([0, 0, 0, 0, 16]); // priority: stream 0, weight 16
    headers.extend(a);
    headers.extend([0, 0]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, PADDED | PRIORITY | 0x1, 5, &headers));
    input.extend(frame(CONTINUATION, END_HEADERS, 5, b));
    let mut payload = vec![0, 0, 0, 0, 16, 0x82, 0x41, 20];
    payload.extend(b"-run-mart-admin.sock");
    let mut expected = PREFACE.to_vec();
    expected.extend(frame(HEADERS, PRIORITY | 0x1 | END_HEADERS, 5, &payload));
    assert_eq!(run(&input), expected);
}

#[test]
fn a_header_block_over_one_frame_is_split_into_continuations() {
    let mut block = authority_literal("/tmp/a.sock");
    let big = "x".repeat(20_000);
    block.push(0x00); // literal without indexing, new name
    encode_int(&mut block, 0, 7, 3);
    block.extend(b"big");
    encode_int(&mut block, 0, 7, big.len() as u64);
    block.extend(big.as_bytes());
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &block));
    let out = run(&input);
    let frames = &out[PREFACE.len()..];
    let first_len = usize::from(frames[1]) << 8 | usize::from(frames[2]);
    assert_eq!(first_len, MAX_FRAME);
    assert_eq!(frames[3], HEADERS);
    assert_eq!(frames[4] & END_HEADERS, 0);
    let second = &frames[FRAME_HEADER + MAX_FRAME..];
    assert_eq!(second[3], CONTINUATION);
    assert_eq!(second[4], END_HEADERS);
    assert!(frames[FRAME_HEADER..]
        .windows(11)
        .any(|w| w == b"-tmp-a.sock"));
}

#[test]
fn what_is_not_http2_goes_through_for_h2_to_refuse() {
    let input = b"GET / HTTP/1.1\r\nHost: /tmp/x\r\n\r\n".to_vec();
    assert_eq!(run(&input), input);
}
