//! The admin socket's connections as grpcurl and grpcio send them: both put the
//! socket path (`/run/mart/admin.sock`) in the `:authority` pseudo-header, which is
//! not a valid URI authority, and h2 answers such a request with `RST_STREAM
//! PROTOCOL_ERROR` before tonic sees it. [`AuthorityFix`] sits between the Unix
//! stream and h2 and rewrites, in the client's header blocks only, an `:authority`
//! that does not parse into one of the same length that does (every byte outside
//! `[A-Za-z0-9.-]` becomes `-`). Same length, because a value the client added to
//! its HPACK dynamic table must take the same room in the server's table, or every
//! later index would point elsewhere.
//!
//! It must never change anything else a client sends (every other frame and header
//! goes through byte for byte), never buffer more than one header block, and is only
//! ever put on the admin socket, whose file permissions already decide who connects;
//! the `:authority` is not used for anything there.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame every HTTP/2 server accepts (SETTINGS_MAX_FRAME_SIZE's floor).
const MAX_FRAME: usize = 16_384;
/// A header block larger than this closes the connection (h2 would refuse it too).
const MAX_BLOCK: usize = 1 << 20;
/// The HPACK static table index of `:authority`.
const AUTHORITY_INDEX: u64 = 1;

/// A client stream whose header blocks get a parsable `:authority`.
pub struct AuthorityFix<S> {
    inner: S,
    parser: Parser,
    /// Bytes ready for h2, and how many of them it has read.
    out: Vec<u8>,
    out_read: usize,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            parser: Parser::default(),
            out: Vec::new(),
            out_read: 0,
        }
    }
}

super::io_wrap::wrap_io!(AuthorityFix, inner);

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_read < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_read);
                buf.put_slice(&this.out[this.out_read..this.out_read + n]);
                this.out_read += n;
                return Poll::Ready(Ok(()));
            }
            this.out.clear();
            this.out_read = 0;
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    this.parser
                        .feed(filled, &mut this.out)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
        }
    }
}

/// Where the parser is in the client's byte stream.
#[derive(Default)]
enum State {
    /// Before (or inside) the connection preface: this many of its bytes seen.
    #[default]
    Preface,
    /// Between frames, gathering the next 9-byte frame header.
    FrameHeader,
    /// Inside a frame that goes through as it is: this many payload bytes left.
    PassThrough(usize),
    /// Inside a HEADERS or CONTINUATION frame: gathering its payload.
    HeaderPayload {
        kind: u8,
        flags: u8,
        stream: [u8; 4],
        len: usize,
    },
    /// Bytes that are not HTTP/2 (h2 will say so): passed on untouched.
    NotHttp2,
}

/// The frame-level state machine; `feed` appends what h2 should read to `out`.
#[derive(Default)]
struct Parser {
    state: State,
    pending: Vec<u8>,
    /// A header block spread over HEADERS and CONTINUATION frames.
    block: Option<Block>,
}

struct Block {
    /// The HEADERS frame's flags (without PADDED and END_HEADERS) and stream id.
    flags: u8,
    stream: [u8; 4],
    /// The 5-byte priority fields, when the HEADERS frame had them.
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

impl Parser {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                State::NotHttp2 => {
                    out.extend_from_slice(input);
                    return Ok(());
                }
                State::Preface => {
                    let want = PREFACE.len() - self.pending.len();
                    let take = want.min(input.len());
                    self.pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if !PREFACE.starts_with(&self.pending) {
                        out.append(&mut self.pending);
                        self.state = State::NotHttp2;
                    } else if self.pending.len() == PREFACE.len() {
                        out.append(&mut self.pending);
                        self.state = State::FrameHeader;
                    }
                }
                State::FrameHeader => {
                    let take = (FRAME_HEADER - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.pending.len() == FRAME_HEADER {
                        let h = std::mem::take(&mut self.pending);
                        let len =
                            usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                        let (kind, flags) = (h[3], h[4]);
                        let stream = [h[5], h[6], h[7], h[8]];
                        if kind == HEADERS || kind == CONTINUATION {
                            if len > MAX_BLOCK {
                                return Err(format!("a header frame of {len} bytes"));
                            }
                            self.state = State::HeaderPayload {
                                kind,
                                flags,
                                stream,
                                len,
                            };
                            if len == 0 {
                                self.header_frame(kind, flags, stream, &[], out)?;
                                self.state = State::FrameHeader;
                            }
                        } else {
                            out.extend_from_slice(&h);
                            self.state = State::PassThrough(len);
                        }
                    }
                }
                State::PassThrough(left) => {
                    let take = left.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.state = if left == take {
                        State::FrameHeader
                    } else {
                        State::PassThrough(left - take)
                    };
                }
                State::HeaderPayload {
                    kind,
                    flags,
                    stream,
                    len,
                } => {
                    let take = (len - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.pending.len() == len {
                        let payload = std::mem::take(&mut self.pending);
                        self.header_frame(kind, flags, stream, &payload, out)?;
                        self.state = State::FrameHeader;
                    }
                }
            }
        }
        Ok(())
    }

    /// One whole HEADERS or CONTINUATION frame; at END_HEADERS the block goes out.
    fn header_frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: [u8; 4],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match (kind, self.block.as_mut()) {
            (HEADERS, None) => {
                let mut rest = payload;
                let mut pad = 0usize;
                if flags & PADDED != 0 {
                    let (&n, tail) = rest.split_first().ok_or("a padded frame without padding")?;
                    pad = usize::from(n);
                    rest = tail;
                }
                let mut priority = None;
                if flags & PRIORITY != 0 {
                    let fields = rest.get(..5).ok_or("a short priority field")?;
                    priority = Some(fields.try_into().expect("five bytes"));
                    rest = &rest[5..];
                }
                let end = rest
                    .len()
                    .checked_sub(pad)
                    .ok_or("padding longer than its frame")?;
                self.block = Some(Block {
                    flags: flags & !(PADDED | END_HEADERS),
                    stream,
                    priority,
                    fragment: rest[..end].to_vec(),
                });
            }
            (CONTINUATION, Some(block)) if block.stream == stream => {
                if block.fragment.len() + payload.len() > MAX_BLOCK {
                    return Err("a header block over 1 MiB".into());
                }
                block.fragment.extend_from_slice(payload);
            }
            _ => return Err("a header frame out of sequence".into()),
        }
        if flags & END_HEADERS != 0 {
            let block = self
                .block
                .take()
                .expect("a block was just started or extended");
            let rewritten = rewrite_block(&block.fragment)?;
            write_block(&block, &rewritten, out);
        }
        Ok(())
    }
}

/// Writes a header block as a HEADERS frame and CONTINUATION frames of at most
/// [`MAX_FRAME`] bytes each.
fn write_block(block: &Block, fragment: &[u8], out: &mut Vec<u8>) {
    let mut first = Vec::with_capacity(5 + fragment.len());
    let mut flags = block.flags;
    if let Some(priority) = block.priority {
        first.extend_from_slice(&priority);
        flags |= PRIORITY;
    }
    let room = MAX_FRAME - first.len();
    let (head, mut rest) = fragment.split_at(room.min(fragment.len()));
    first.extend_from_slice(head);
    let mut kind = HEADERS;
    let mut payload = first;
    loop {
        let last = rest.is_empty();
        let frame_flags = if last { flags | END_HEADERS } else { flags };
        let len = payload.len();
        out.extend_from_slice(&[
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            frame_flags,
        ]);
        out.extend_from_slice(&block.stream);
        out.extend_from_slice(&payload);
        if last {
            return;
        }
        let (next, tail) = rest.split_at(MAX_FRAME.min(rest.len()));
        payload = next.to_vec();
        rest = tail;
        kind = CONTINUATION;
        flags = 0; // a CONTINUATION frame carries END_HEADERS only
    }
}

/// Copies an HPACK header block, with every `:authority` literal that is not a
/// valid URI authority replaced (RFC 7541 section 6 for the representations).
fn rewrite_block(block: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(block.len() + 16);
    let mut at = 0;
    while at < block.len() {
        let first = block[at];
        let start = at;
        if first & 0x80 != 0 {
            // Indexed header field.
            decode_int(block, &mut at, 7)?;
            out.extend_from_slice(&block[start..at]);
        } else if first & 0xE0 == 0x20 {
            // Dynamic table size update.
            decode_int(block, &mut at, 5)?;
            out.extend_from_slice(&block[start..at]);
        } else {
            // A literal: with incremental indexing (01), without (0000) or never indexed (0001).
            let prefix = if first & 0x40 != 0 { 6 } else { 4 };
            let index = decode_int(block, &mut at, prefix)?;
            let name = if index == 0 {
                Some(decode_string(block, &mut at)?)
            } else {
                None
            };
            let value_start = at;
            let value = decode_string(block, &mut at)?;
            let is_authority =
                index == AUTHORITY_INDEX || name.as_ref().is_some_and(|(n, _)| n == b":authority");
            let (value, _) = value;
            let fixed = is_authority.then(|| parsable_authority(&value)).flatten();
            match fixed {
                None => out.extend_from_slice(&block[start..at]),
                Some(fixed) => {
                    out.extend_from_slice(&block[start..value_start]);
                    encode_int(&mut out, 0x00, 7, fixed.len() as u64);
                    out.extend_from_slice(&fixed);
                }
            }
        }
    }
    Ok(out)
}

/// `None` when `value` already parses as an authority; else the same number of bytes,
/// each outside `[A-Za-z0-9.-]` turned into `-`.
fn parsable_authority(value: &[u8]) -> Option<Vec<u8>> {
    if http::uri::Authority::try_from(value).is_ok() {
        return None;
    }
    let fixed = value
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                b
            } else {
                b'-'
            }
        })
        .collect();
    Some(fixed)
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 section 5.1).
fn decode_int(block: &[u8], at: &mut usize, n: u32) -> Result<u64, String> {
    let mask = (1u16 << n) as u8 - 1;
    let first = *block
        .get(*at)
        .ok_or("a header block cut inside an integer")?;
    *at += 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block
            .get(*at)
            .ok_or("a header block cut inside an integer")?;
        *at += 1;
        value += u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 28 {
            return Err("an HPACK integer over 32 bits".into());
        }
    }
}

fn encode_int(out: &mut Vec<u8>, flags: u8, n: u32, mut value: u64) {
    let mask = (1u16 << n) as u8 - 1;
    if value < u64::from(mask) {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask);
    value -= u64::from(mask);
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// An HPACK string literal, decoded, and whether it was Huffman-coded.
fn decode_string(block: &[u8], at: &mut usize) -> Result<(Vec<u8>, bool), String> {
    let huffman = block.get(*at).ok_or("a header block cut before a string")? & 0x80 != 0;
    let len = usize::try_from(decode_int(block, at, 7)?).map_err(|_| "a string too long")?;
    let end = at.checked_add(len).filter(|&end| end <= block.len());
    let bytes = &block[*at..end.ok_or("a header block cut inside a string")?];
    *at += len;
    if !huffman {
        return Ok((bytes.to_vec(), false));
    }
    let mut decoded = Vec::with_capacity(len * 8 / 5);
    httlib_huffman::decode(bytes, &mut decoded, httlib_huffman::DecoderSpeed::FourBits)
        .map_err(|e| format!("a bad Huffman string: {e}"))?;
    Ok((decoded, true))
}

#[cfg(test)]
#[path = "unix_authority_tests.rs"]
mod tests;
