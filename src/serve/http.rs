//! Just enough HTTP/1.1 for `serve`, on `std::net`, with a limit on
//! everything a client controls.
//!
//! Each connection gets a thread (at most [`MAX_CONNECTIONS`] at once; the
//! next one is answered 503 and closed) and may send any number of requests
//! on it (keep-alive). A request must arrive whole within
//! [`REQUEST_TIMEOUT`] of the server starting to wait for it, or the
//! connection is closed (408 if part of it had come). The head (request line
//! and headers) is at most [`MAX_HEAD`] bytes (else 431). A body comes with
//! `Content-Length` or `Transfer-Encoding: chunked`; one that declares or
//! accumulates more than the handler's limit is refused with 413 without
//! reading the rest, and the connection is closed. Errors are JSON
//! `{"error": "..."}` like the handler's own.
//!
//! Written here rather than taken from tiny_http 0.12, which drains an unread
//! body into a buffer as large as its declared `Content-Length` (one request
//! declaring 2^64 - 1 bytes brought the server down) and has no read timeouts.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

/// Longest request line plus headers, in bytes.
pub const MAX_HEAD: usize = 16 << 10;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send a whole request, counted from when the server
/// starts waiting for it (so it also closes idle keep-alive connections).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A request as the handler sees it: the body has been read whole.
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub body: Vec<u8>,
}

/// An answer: status, `Content-Type` and body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "error": message }))
    }
}

/// Why a request could not be read: answered with `status` (if any) and the
/// connection closed.
struct Refused {
    status: Option<u16>,
    message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refused {
    Refused {
        status: Some(status),
        message: message.into(),
    }
}

/// The socket, read with a deadline: every read gets only the time left.
struct Deadline {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Turns a failed read into a refusal: a timeout gets 408, a vanished
/// client nothing.
fn io_refusal(e: io::Error) -> Refused {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => refuse(
            408,
            format!(
                "the request did not arrive within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
        _ => Refused {
            status: None,
            message: e.to_string(),
        },
    }
}

/// One line ending in CRLF (or LF), CRLF removed, taking at most `*budget`
/// bytes and counting them off. `Ok(None)` at end of stream before any byte.
fn read_line(
    reader: &mut BufReader<Deadline>,
    budget: &mut usize,
    what: &str,
) -> Result<Option<String>, Refused> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget as u64)
        .read_until(b'\n', &mut line)
        .map_err(io_refusal)?;
    *budget -= n;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if *budget == 0 {
            refuse(431, format!("{what}: more than {MAX_HEAD} bytes"))
        } else {
            Refused {
                status: None,
                message: "connection closed mid-line".into(),
            }
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| refuse(400, format!("{what}: not UTF-8")))
}

/// What the head says about the body and the connection.
struct Head {
    method: String,
    path: String,
    content_length: Option<usize>,
    chunked: bool,
    expect_continue: bool,
    keep_alive: bool,
}

fn parse_head(reader: &mut BufReader<Deadline>) -> Result<Option<Head>, Refused> {
    let mut budget = MAX_HEAD;
    let Some(request_line) = read_line(reader, &mut budget, "the request head")? else {
        return Ok(None);
    };
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(refuse(
            400,
            format!(
                "expected a request line like \"POST /predict HTTP/1.1\", found {request_line:?}"
            ),
        ));
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(refuse(
                505,
                format!("expected HTTP/1.1 or HTTP/1.0, found {version:?}"),
            ));
        }
    };
    let mut head = Head {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or("").to_owned(),
        content_length: None,
        chunked: false,
        expect_continue: false,
        keep_alive,
    };
    loop {
        let line = read_line(reader, &mut budget, "the request head")?
            .ok_or_else(|| refuse(400, "the connection closed inside the request head"))?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(refuse(
                400,
                format!("expected a header \"Name: value\", found {line:?}"),
            ));
        };
        let value = value.trim();
        let lower = value.to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value.parse::<usize>().map_err(|_| {
                    refuse(
                        400,
                        format!("expected Content-Length to be a number of bytes, found {value:?}"),
                    )
                })?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(refuse(400, "two different Content-Length headers"));
                }
                head.content_length = Some(n);
            }
            "transfer-encoding" if lower == "chunked" => head.chunked = true,
            "transfer-encoding" => {
                return Err(refuse(
                    501,
                    format!("expected Transfer-Encoding: chunked, found {value:?}"),
                ));
            }
            "expect" if lower == "100-continue" => head.expect_continue = true,
            "expect" => return Err(refuse(417, format!("cannot meet Expect: {value}"))),
            "connection" if lower.contains("close") => keep_alive = false,
            "connection" if lower.contains("keep-alive") => keep_alive = true,
            _ => {}
        }
    }
    if head.chunked && head.content_length.is_some() {
        // Two framings that could disagree: how requests get smuggled.
        return Err(refuse(
            400,
            "both Content-Length and Transfer-Encoding; send one",
        ));
    }
    head.keep_alive = keep_alive;
    Ok(Some(head))
}

fn too_large(limit: usize) -> Refused {
    refuse(413, format!("request body larger than {limit} bytes"))
}

/// The body of a chunked request, refused as soon as it passes `limit`.
fn read_chunked(reader: &mut BufReader<Deadline>, limit: usize) -> Result<Vec<u8>, Refused> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let line = read_line(reader, &mut budget, "the chunk sizes")?
            .ok_or_else(|| refuse(400, "the connection closed inside a chunked body"))?;
        let digits = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(digits, 16).map_err(|_| {
            refuse(
                400,
                format!("expected a chunk size in hexadecimal, found {line:?}"),
            )
        })?;
        if size == 0 {
            break;
        }
        if size > limit - body.len() {
            return Err(too_large(limit));
        }
        let start = body.len();
        reader
            .by_ref()
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(io_refusal)?;
        if body.len() - start != size {
            return Err(refuse(400, "the connection closed inside a chunk"));
        }
        let end = read_line(reader, &mut budget, "the chunk sizes")?;
        if end.as_deref() != Some("") {
            return Err(refuse(400, "expected CRLF after a chunk"));
        }
    }
    // Trailers, ignored.
    while read_line(reader, &mut budget, "the trailers")?.is_some_and(|l| !l.is_empty()) {}
    Ok(body)
}

fn read_request(
    reader: &mut BufReader<Deadline>,
    body_limit: usize,
) -> Result<Option<(Request, bool)>, Refused> {
    let Some(head) = parse_head(reader)? else {
        return Ok(None);
    };
    if head.content_length.is_some_and(|n| n > body_limit) {
        return Err(too_large(body_limit));
    }
    if head.expect_continue && (head.chunked || head.content_length.is_some_and(|n| n > 0)) {
        reader
            .get_mut()
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(io_refusal)?;
    }
    let body = if head.chunked {
        read_chunked(reader, body_limit)?
    } else {
        let n = head.content_length.unwrap_or(0);
        let mut body = Vec::new();
        reader
            .by_ref()
            .take(n as u64)
            .read_to_end(&mut body)
            .map_err(io_refusal)?;
        if body.len() != n {
            return Err(Refused {
                status: None,
                message: format!("the client closed after {} of {n} body bytes", body.len()),
            });
        }
        body
    };
    let request = Request {
        method: head.method,
        path: head.path,
        body,
    };
    Ok(Some((request, head.keep_alive)))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_response(stream: &mut TcpStream, response: &Response, keep_alive: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = Vec::with_capacity(head.len() + response.body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&response.body);
    stream.write_all(&out)
}

/// Answers the requests of one connection until it closes, times out or
/// sends something that cannot be read.
fn serve_connection(
    stream: TcpStream,
    body_limit: usize,
    handler: &(dyn Fn(&Request) -> Response + Sync),
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(Deadline {
        stream,
        until: Instant::now(),
    });
    loop {
        reader.get_mut().until = Instant::now() + REQUEST_TIMEOUT;
        // Nothing is owed to a client that sends nothing more.
        if reader.fill_buf().map_or(true, |b| b.is_empty()) {
            return Ok(());
        }
        match read_request(&mut reader, body_limit) {
            Ok(None) => return Ok(()),
            Ok(Some((request, keep_alive))) => {
                write_response(&mut writer, &handler(&request), keep_alive)?;
                if !keep_alive {
                    return Ok(());
                }
            }
            Err(Refused { status, message }) => {
                if let Some(status) = status {
                    write_response(&mut writer, &Response::error(status, &message), false)?;
                    linger(&mut reader, &writer);
                }
                return Ok(());
            }
        }
    }
}

/// Before closing after a refusal, reads (a little of) what the client is
/// still sending: closing with unread data resets the connection, and the
/// client could lose the answer along with it.
fn linger(reader: &mut BufReader<Deadline>, writer: &TcpStream) {
    let _ = writer.shutdown(std::net::Shutdown::Write);
    reader.get_mut().until = Instant::now() + Duration::from_secs(2);
    let _ = io::copy(&mut reader.take(MAX_LINGER as u64), &mut io::sink());
}

/// Bytes read and thrown away after a refusal, at most.
const MAX_LINGER: usize = 32 << 20;

/// Counts an open connection until dropped, also when its thread panics or
/// cannot be started.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `listener` forever, one thread per connection, each request
/// answered by `handler`; bodies longer than `body_limit` bytes get 413.
pub fn run(
    listener: TcpListener,
    body_limit: usize,
    handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>,
) -> ! {
    let count = Arc::new(AtomicUsize::new(0));
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait for connections to close.
                eprintln!("cannot accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let open = Open(Arc::clone(&count));
        if count.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let busy = Response::error(
                503,
                &format!("{MAX_CONNECTIONS} connections are open; try again shortly"),
            );
            let _ = write_response(&mut stream, &busy, false);
            continue;
        }
        let handler = Arc::clone(&handler);
        let spawned = std::thread::Builder::new().spawn(move || {
            let _open = open;
            // A client that hangs up or misbehaves is its own business.
            let _ = serve_connection(stream, body_limit, &*handler);
        });
        if let Err(e) = spawned {
            eprintln!("cannot start a thread for a connection: {e}");
        }
    }
}
