//! A broadcast chat server over TCP: the chat server of *The Go Programming
//! Language* (gopl.io/ch8/chat: a `broadcaster` goroutine selecting over
//! `entering`, `leaving` and `messages` channels, a `handleConn` goroutine
//! per client and a `clientWriter` goroutine fed by a per-client channel),
//! with the slow-client rule of gorilla/websocket's chat hub
//! (examples/chat/hub.go): the hub never blocks on a client.
//!
//! ```text
//! cargo run --release --example chat_server -- 127.0.0.1:9000
//! nc 127.0.0.1 9000        # first line: your nickname; then chat, line by line
//! ```
//!
//! | Go                                              | here                                                  |
//! |-------------------------------------------------|-------------------------------------------------------|
//! | `entering = make(chan client)` (unbuffered)     | `chan::bounded::<Client>(0)` (also `leaving`, `messages`) |
//! | `ch := make(chan string, n)` per client         | `chan::bounded::<Line>(CLIENT_QUEUE)`                 |
//! | `go broadcaster()`                              | `gort::go!(move \|\| hub(...))`                       |
//! | `select { case cli := <-entering: ... }`        | `gort::select! { recv(join) -> c => ..., ... }`       |
//! | `select { case cli <- msg: default: drop }`     | `cli.out.try_send(msg)`, `Err(Full)` → disconnect     |
//! | `close(cli)` / `delete(clients, cli)`           | `clients.remove(&id)` drops the `Sender`: channel closed |
//! | `go clientWriter(conn, ch)`: `for msg := range ch` | `gort::go!(...)`: `for line in &lines`             |
//! | `input := bufio.NewScanner(conn)`; `input.Scan()` | `BufReader::new(&*conn)`; `read_until(b'\n')` (max `MAX_LINE`) |
//! | `conn.Close()` from another goroutine           | `conn.close()` on the shared `Arc<TcpStream>`: wakes the blocked read and write |
//! | `for { conn, err := listener.Accept(); go handleConn(conn) }` | `serve`: `listener.accept()`, `gort::go!` |
//!
//! # Protocol
//! Lines of text. A client's first line is its nickname; every later
//! non-empty line is a message, which everyone else receives as
//! `nick: text`. The server also sends notices starting with `* `:
//! `* you are NICK; also here: A, B` (or `...; nobody else is here`) to a
//! newcomer, `* NICK joined`, `* NICK left` and
//! `* NICK was disconnected (not reading)` to everyone else.
//!
//! # A slow client is disconnected, not waited for
//! The hub hands each line to a client's writer coroutine through that
//! client's bounded channel, with `try_send`, never a blocking send: a
//! client that stops reading first fills its socket buffers, then its
//! writer blocks, then its channel fills ([`CLIENT_QUEUE`] lines), and the
//! hub's next `try_send` to it fails with `Full`. The hub then disconnects
//! it (as gorilla's hub does; gopl's blocks everyone instead): removes it,
//! which closes its channel, closes its connection, which wakes its reader
//! and writer, and tells the others. Dropping just that one line instead
//! would leave a gap in that client's conversation that it cannot notice,
//! and a client that never reads again would stay forever.

use std::{
    collections::{HashMap, VecDeque},
    io::{self, BufRead, BufReader, Read, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use gort::{
    chan::{self, Receiver, Sender, TrySendError},
    net::{TcpListener, TcpStream},
};

/// Lines that may wait for one client's writer; when full, the hub
/// disconnects that client.
pub const CLIENT_QUEUE: usize = 256;

/// Longest line accepted from a client, in bytes, without its newline; a
/// longer one ends the connection (Go's `bufio.Scanner` has a limit too).
pub const MAX_LINE: usize = 4096;

/// Longest nickname kept, in characters (longer ones are cut).
pub const MAX_NICK: usize = 32;

/// A line on its way to clients, newline included: built once, shared by
/// every client's queue.
type Line = Arc<str>;

/// A connected client, as the hub knows it.
struct Client {
    id: u64,
    name: String,
    /// The writer's queue; dropping it (the hub's copy is the only one)
    /// closes the channel, which ends the writer.
    out: Sender<Line>,
    /// The connection, to close it when the client is too slow.
    conn: Arc<TcpStream>,
}

/// A line a client said.
struct Message {
    from: u64,
    text: String,
}

/// The hub's three inputs, as every connection holds them. The hub stops
/// once every copy is gone (the listener closed and every client left).
#[derive(Clone)]
struct HubInputs {
    join: Sender<Client>,
    leave: Sender<u64>,
    messages: Sender<Message>,
}

/// Serves chat clients accepted from `listener` until it is closed
/// ([`TcpListener::close`]), then returns `Ok`; clients still connected
/// keep chatting until they leave, and the hub ends after the last one.
/// Runs inside a gort runtime.
pub fn serve(listener: &TcpListener) -> io::Result<()> {
    let (join_tx, join_rx) = chan::bounded(0);
    let (leave_tx, leave_rx) = chan::bounded(0);
    let (msg_tx, msg_rx) = chan::bounded(0);
    gort::go!(move || hub(join_rx, leave_rx, msg_rx));
    let inputs = HubInputs {
        join: join_tx,
        leave: leave_tx,
        messages: msg_tx,
    };
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                backoff = Duration::ZERO;
                let _ = conn.set_nodelay(true);
                let inputs = inputs.clone();
                gort::go!(move || handle_conn(conn, inputs));
            }
            // Closed by `TcpListener::close` (Go's net.ErrClosed).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => {
                // Out of descriptors or another temporary error: back off
                // as Go's http.Server does.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("chat_server: accept: {e}; retrying in {backoff:?}");
                gort::time::sleep(backoff);
            }
        }
    }
}

/// The hub (gopl's `broadcaster`): owns the set of clients, and is the
/// only one to touch it, so it needs no lock.
fn hub(join: Receiver<Client>, leave: Receiver<u64>, messages: Receiver<Message>) {
    let mut clients: HashMap<u64, Client> = HashMap::new();
    loop {
        gort::select! {
            recv(join) -> c => {
                let Ok(c) = c else { return };
                let mut others: Vec<&str> = clients.values().map(|o| o.name.as_str()).collect();
                others.sort_unstable();
                let welcome = if others.is_empty() {
                    format!("* you are {}; nobody else is here\n", c.name)
                } else {
                    format!("* you are {}; also here: {}\n", c.name, others.join(", "))
                };
                // The newcomer's queue is empty: this cannot be Full.
                let _ = c.out.try_send(welcome.into());
                broadcast(&mut clients, format!("* {} joined\n", c.name), None);
                clients.insert(c.id, c);
            }
            recv(leave) -> id => {
                let Ok(id) = id else { return };
                // Absent if the hub disconnected it already.
                if let Some(c) = clients.remove(&id) {
                    broadcast(&mut clients, format!("* {} left\n", c.name), None);
                }
            }
            recv(messages) -> m => {
                let Ok(m) = m else { return };
                // Absent if it was just disconnected; its last words go.
                if let Some(from) = clients.get(&m.from) {
                    let line = format!("{}: {}\n", from.name, m.text);
                    broadcast(&mut clients, line, Some(m.from));
                }
            }
        }
    }
}

/// Queues `line` for every client but `except`, without ever blocking:
/// a client whose queue is full is disconnected, and that is announced in
/// turn (which may find more slow clients).
fn broadcast(clients: &mut HashMap<u64, Client>, line: String, except: Option<u64>) {
    let mut pending = VecDeque::from([(Line::from(line), except)]);
    while let Some((line, except)) = pending.pop_front() {
        let mut slow = Vec::new();
        for c in clients.values() {
            if Some(c.id) == except {
                continue;
            }
            match c.out.try_send(line.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => slow.push(c.id),
                // Its writer failed and closed the connection; its reader
                // is about to report the leave.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        for id in slow {
            let c = clients.remove(&id).expect("slow clients are present");
            // Wakes its reader (which reports a leave the hub ignores) and
            // its writer; dropping `c.out` closes its queue.
            c.conn.close();
            let notice = format!("* {} was disconnected (not reading)\n", c.name);
            pending.push_back((notice.into(), None));
        }
    }
}

/// One client's connection (gopl's `handleConn`): reads the nickname,
/// starts the writer, joins, forwards each line to the hub, leaves.
fn handle_conn(conn: TcpStream, hub: HubInputs) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let conn = Arc::new(conn);
    let mut input = BufReader::new(&*conn);
    let mut buf = Vec::new();
    let Some(nick) = read_line(&mut input, &mut buf) else {
        return;
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut name: String = nick.trim().chars().take(MAX_NICK).collect();
    if name.is_empty() {
        name = format!("guest{id}");
    }
    let (out, lines) = chan::bounded(CLIENT_QUEUE);
    let w = conn.clone();
    gort::go!(move || client_writer(&w, &lines));
    let client = Client {
        id,
        name,
        out,
        conn: conn.clone(),
    };
    if hub.join.send(client).is_err() {
        return;
    }
    while let Some(text) = read_line(&mut input, &mut buf) {
        if text.is_empty() {
            continue;
        }
        if hub.messages.send(Message { from: id, text }).is_err() {
            return;
        }
    }
    let _ = hub.leave.send(id);
}

/// Reads one line (without `\n` or `\r\n`); `None` at EOF, on an error,
/// or if the line is longer than [`MAX_LINE`]. A last line without a
/// newline counts, as with Go's `bufio.Scanner`.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    match input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
    {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > MAX_LINE {
        return None;
    }
    Some(String::from_utf8_lossy(buf).into_owned())
}

/// Writes the lines queued for one client (gopl's `clientWriter`),
/// batching whatever is already queued into one write, until the hub
/// closes the queue. A failed write closes the connection, which ends the
/// reader too.
fn client_writer(conn: &TcpStream, lines: &Receiver<Line>) {
    let mut out = conn;
    let mut batch = Vec::with_capacity(4096);
    for line in lines {
        batch.extend_from_slice(line.as_bytes());
        for more in lines.try_iter() {
            batch.extend_from_slice(more.as_bytes());
            if batch.len() >= 64 * 1024 {
                break;
            }
        }
        if let Err(e) = out.write_all(&batch) {
            if e.kind() != io::ErrorKind::NotConnected {
                conn.close();
            }
            return;
        }
        batch.clear();
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_string());
    gort::run(move || {
        let listener = TcpListener::bind(&addr)?;
        eprintln!(
            "chat_server: listening on {} with {} Ps (first line: your nickname)",
            listener.local_addr()?,
            gort::procs()
        );
        serve(&listener)
    })
}
