//! The chat_server example: join/leave notices, every message reaching
//! every other client, and a client that never reads being disconnected
//! instead of stalling the others. The clients are std TcpStreams on plain
//! threads; read timeouts are watchdogs only (a stall fails, not hangs).

mod support;

#[path = "../examples/chat_server.rs"]
#[allow(dead_code)]
mod chat_server;

use std::{
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Condvar, Mutex},
    thread,
};

use support::{ExampleServer as Server, WATCHDOG};

/// A line-oriented chat client.
struct Client {
    name: String,
    input: BufReader<TcpStream>,
    output: TcpStream,
}

impl Client {
    /// Connects and sends the nickname; checks the welcome notice, which
    /// names the others present (sorted).
    fn join(addr: SocketAddr, name: &str, others: &[&str]) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        s.set_write_timeout(Some(WATCHDOG)).unwrap();
        let mut c = Client {
            name: name.to_string(),
            input: BufReader::new(s.try_clone().unwrap()),
            output: s,
        };
        c.say(name);
        let welcome = if others.is_empty() {
            format!("* you are {name}; nobody else is here")
        } else {
            format!("* you are {name}; also here: {}", others.join(", "))
        };
        assert_eq!(c.line(), welcome);
        c
    }

    fn say(&mut self, text: &str) {
        self.output
            .write_all(format!("{text}\n").as_bytes())
            .unwrap();
    }

    /// The next line, without its newline.
    fn line(&mut self) -> String {
        let mut l = String::new();
        match self.input.read_line(&mut l) {
            Ok(0) => panic!("{}: the server closed the connection", self.name),
            Ok(_) => {}
            Err(e) => panic!("{}: reading a line: {e} (a stall?)", self.name),
        }
        assert_eq!(l.pop(), Some('\n'));
        l
    }

    fn expect(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(got, want, "{} got {got:?}, expected {want:?}", self.name);
    }
}

#[test]
fn join_talk_leave() {
    support::with_timeout(60, || {
        let server = Server::start(chat_server::serve);
        let mut alice = Client::join(server.addr, "alice", &[]);
        let mut bob = Client::join(server.addr, "bob", &["alice"]);
        alice.expect("* bob joined");
        let mut carol = Client::join(server.addr, "carol", &["alice", "bob"]);
        alice.expect("* carol joined");
        bob.expect("* carol joined");

        // Each message reaches every other client, not its sender: the
        // senders' own next lines are the others' messages.
        alice.say("hello from alice");
        bob.expect("alice: hello from alice");
        carol.expect("alice: hello from alice");
        bob.say("hi, bob here");
        alice.expect("bob: hi, bob here");
        carol.expect("bob: hi, bob here");
        carol.say("carol too\r"); // \r\n line ends are accepted
        alice.expect("carol: carol too");
        bob.expect("carol: carol too");
        // Empty lines are not broadcast.
        alice.say("");
        alice.say("two");
        bob.expect("alice: two");
        carol.expect("alice: two");

        // Leaving, by closing the connection.
        drop(carol);
        alice.expect("* carol left");
        bob.expect("* carol left");
        bob.say("bye");
        alice.expect("bob: bye");

        // A name joining again after leaving is fine; an empty nickname
        // gets a guest name.
        let mut carol = Client::join(server.addr, "carol", &["alice", "bob"]);
        alice.expect("* carol joined");
        bob.expect("* carol joined");
        let s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        (&s).write_all(b"  \n").unwrap();
        let mut guest = String::new();
        BufReader::new(&s).read_line(&mut guest).unwrap();
        assert!(
            guest.starts_with("* you are guest")
                && guest.ends_with("; also here: alice, bob, carol\n"),
            "{guest:?}"
        );
        let guest_name = guest["* you are ".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_string();
        for c in [&mut alice, &mut bob, &mut carol] {
            c.expect(&format!("* {guest_name} joined"));
        }
        drop(s);
        for c in [&mut alice, &mut bob, &mut carol] {
            c.expect(&format!("* {guest_name} left"));
        }

        // A line over the limit ends that client's connection.
        carol.say(&"x".repeat(chat_server::MAX_LINE + 10));
        alice.expect("* carol left");
        bob.expect("* carol left");

        drop((alice, bob));
        server.stop();
    });
}

/// What the reading client (bob) has seen so far, shared with the flooder.
#[derive(Default)]
struct Progress {
    messages: u64,
    kicked: bool,
}

#[test]
fn a_client_that_never_reads_is_disconnected_not_waited_for() {
    support::with_timeout(120, || {
        let server = Server::start(chat_server::serve);
        let mut alice = Client::join(server.addr, "alice", &[]);
        let mut bob = Client::join(server.addr, "bob", &["alice"]);
        alice.expect("* bob joined");
        // sloth joins, then never reads a byte.
        let sloth = TcpStream::connect(server.addr).unwrap();
        (&sloth).write_all(b"sloth\n").unwrap();
        alice.expect("* sloth joined");
        bob.expect("* sloth joined");

        // bob reads on his own thread, checking that alice's messages come
        // in order and complete, and reports his progress to alice.
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let p = progress.clone();
        let bob_thread = thread::spawn(move || {
            let mut next = 0u64;
            loop {
                let l = bob.line();
                if l == "alice: done" {
                    return (bob, next);
                }
                let mut st = p.0.lock().unwrap();
                if l == "* sloth was disconnected (not reading)" {
                    assert!(!st.kicked, "kicked twice");
                    st.kicked = true;
                } else {
                    let want = format!("alice: {next} ");
                    assert!(l.starts_with(&want), "bob got {l:?}, expected {want:?}...");
                    next += 1;
                    st.messages = next;
                }
                p.1.notify_all();
            }
        });

        // alice floods, but stays at most WINDOW messages ahead of bob, so
        // bob (who reads) never has a full queue however the threads are
        // scheduled, while sloth's socket buffers and queue fill up. The
        // hub must then drop sloth, and bob must keep getting everything.
        const WINDOW: u64 = 32;
        const GIVE_UP: u64 = 100_000; // ~200 MB: sloth was never dropped
        let pad = "p".repeat(2000);
        let mut sent = 0u64;
        loop {
            let (lock, cv) = &*progress;
            let mut st = lock.lock().unwrap();
            while !st.kicked && st.messages + WINDOW < sent {
                let (g, t) = cv.wait_timeout(st, WATCHDOG).unwrap();
                assert!(!t.timed_out(), "bob stalled at {} of {sent}", g.messages);
                st = g;
            }
            if st.kicked {
                break;
            }
            drop(st);
            assert!(sent < GIVE_UP, "sloth was never disconnected");
            alice.say(&format!("{sent} {pad}"));
            sent += 1;
        }
        alice.say("done");
        let (mut bob, got) = bob_thread.join().unwrap();
        assert_eq!(got, sent, "bob missed messages");
        alice.expect("* sloth was disconnected (not reading)");
        eprintln!("sloth was disconnected after {sent} messages of 2 KB");

        // The others carry on.
        bob.say("still here");
        alice.expect("bob: still here");

        // sloth's connection was closed by the server: after whatever was
        // in flight, it reads EOF (or a reset).
        sloth.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match (&sloth).read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("sloth: {e} (the server did not close it)"),
            }
        }

        drop((alice, bob));
        server.stop();
    });
}
