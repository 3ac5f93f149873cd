//! A TCP echo server, Go's classic shape on gort: one coroutine per
//! connection, code that reads like blocking I/O.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:9000
//! ```
//!
//! The Go program it mirrors, construct by construct:
//!
//! | Go                                    | here                                         |
//! |---------------------------------------|----------------------------------------------|
//! | `func main()` (runtime starts itself) | `gort::run(\|\| ...)`: GORT_PROCS Ps (default: all cores) |
//! | `l, err := net.Listen("tcp", addr)`   | `TcpListener::bind(addr)?`                   |
//! | `for { conn, err := l.Accept() ... }` | `loop { match listener.accept() { ... } }`   |
//! | `go serve(conn)`                      | `gort::go!(move \|\| serve(conn))`           |
//! | `buf := make([]byte, 4096)`           | `let mut buf = [0u8; 4096]` (on the coroutine's stack) |
//! | `n, err := conn.Read(buf)`            | `conn.read(&mut buf)`: parks the coroutine, not the thread |
//! | `if err == io.EOF { return }`         | `Ok(0) => return`                            |
//! | `conn.Write(buf[:n])`                 | `conn.write_all(&buf[..n])`                  |
//! | `defer conn.Close()`                  | `conn` is dropped when `serve` returns       |
//! | `net/http`'s accept back-off on EMFILE | the `Err` arm: sleep 5 ms, doubling to 1 s  |

use std::{
    io::{self, Read, Write},
    time::Duration,
};

use gort::net::{TcpListener, TcpStream};

/// Echoes everything `conn` sends until it closes its side. (The demo
/// runs this too.)
pub fn serve(mut conn: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return, // EOF
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return, // reset by the peer, ...
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_string());
    gort::run(move || {
        let listener = TcpListener::bind(&addr)?;
        eprintln!(
            "echo_server: listening on {} with {} Ps",
            listener.local_addr()?,
            gort::procs()
        );
        let mut backoff = Duration::ZERO;
        loop {
            match listener.accept() {
                Ok((conn, _peer)) => {
                    backoff = Duration::ZERO;
                    // Small writes go out at once, as in Go (which sets
                    // TCP_NODELAY on every connection).
                    let _ = conn.set_nodelay(true);
                    gort::go!(move || serve(conn));
                }
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or another
                    // temporary error: back off and try again, as Go's
                    // http.Server does. The connection stays queued.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    eprintln!("echo_server: accept: {e}; retrying in {backoff:?}");
                    gort::time::sleep(backoff);
                }
            }
        }
    })
}
