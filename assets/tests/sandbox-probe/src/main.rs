//! A WASI 0.2 command that tries to reach outside its sandbox and prints, one
//! line per attempt, what it got: `name: OK <what>` or `name: DENIED <error>`.
//!
//! siteboss's `sandbox` test runs it and asserts that it gets nothing: no
//! arguments beyond its name, no environment, no files, no network, an empty
//! stdin.

use std::fmt::Debug;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

fn report<T: Debug>(name: &str, r: std::io::Result<T>) {
    match r {
        Ok(v) => println!("{name}: OK {v:?}"),
        Err(e) => println!("{name}: DENIED {e}"),
    }
}

fn main() {
    println!("args: {:?}", std::env::args().collect::<Vec<_>>());
    println!("env: {:?}", std::env::vars().collect::<Vec<_>>());
    report("read /etc/passwd", std::fs::read_to_string("/etc/passwd"));
    report("list /", std::fs::read_dir("/").map(|d| d.count()));
    report("list .", std::fs::read_dir(".").map(|d| d.count()));
    report("create /tmp/sandbox-probe", std::fs::write("/tmp/sandbox-probe", b"x"));
    report("current dir", std::env::current_dir());
    report("tcp connect 127.0.0.1:1", TcpStream::connect("127.0.0.1:1"));
    report("udp bind 127.0.0.1:0", UdpSocket::bind("127.0.0.1:0"));
    report(
        "resolve localhost",
        ("localhost", 80).to_socket_addrs().map(|a| a.collect::<Vec<_>>()),
    );
    let mut stdin = Vec::new();
    report("stdin", std::io::stdin().read_to_end(&mut stdin).map(|_| stdin));
}
