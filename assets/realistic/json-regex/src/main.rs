//! A command component doing the kind of work a small web handler does: about
//! 4 ms of JSON and regular expressions per run on a 2 GHz x86-64 core.
//!
//! Each run builds a JSON document of [`RECORDS`] log records (about 90 KB),
//! parses it back twice (into typed records and into a `serde_json::Value`),
//! compiles five Unicode-aware regular expressions, matches them against every
//! record, and prints a one-line summary. Nothing is cached between runs: every
//! instance starts from its initial memory, as a host that instantiates per
//! request runs it.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Records in the document. Decides the work per run.
const RECORDS: usize = 400;

#[derive(Serialize, Deserialize)]
struct Record {
    id: u64,
    user: String,
    email: String,
    url: String,
    when: String,
    level: String,
    message: String,
    tags: Vec<String>,
}

const WORDS: [&str; 16] = [
    "request", "timeout", "überprüfung", "cache", "miss", "user", "login", "ok",
    "fehler", "données", "retry", "upstream", "latency", "token", "session", "expired",
];
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// A small deterministic generator (xorshift64*), so every run does the same work.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn document() -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let records: Vec<Record> = (0..RECORDS as u64)
        .map(|id| {
            let user = format!("{}{}", rng.pick(&WORDS), rng.next() % 1000);
            let mut message = String::new();
            for _ in 0..12 {
                let _ = write!(message, "{} ", rng.pick(&WORDS));
            }
            Record {
                id,
                email: if id % 7 == 0 {
                    format!("{user}@invalid")
                } else {
                    format!("{user}@example{}.com", rng.next() % 10)
                },
                url: format!(
                    "https://api.example.com/v{}/{}/{}?page={}",
                    1 + rng.next() % 3,
                    rng.pick(&WORDS),
                    id,
                    rng.next() % 50
                ),
                when: format!(
                    "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    1 + rng.next() % 12,
                    1 + rng.next() % 28,
                    rng.next() % 24,
                    rng.next() % 60,
                    rng.next() % 60
                ),
                level: rng.pick(&LEVELS).to_owned(),
                message,
                tags: (0..3).map(|_| rng.pick(&WORDS).to_owned()).collect(),
                user,
            }
        })
        .collect();
    serde_json::to_string(&records).expect("records serialize")
}

fn main() {
    let text = document();
    let records: Vec<Record> = serde_json::from_str(&text).expect("the document parses");
    let value: serde_json::Value = serde_json::from_str(&text).expect("the document parses");

    let email = Regex::new(r"^[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}$").unwrap();
    let url = Regex::new(r"^https://(?P<host>[^/]+)/v(?P<ver>\d+)/(?P<res>\w+)/(?P<id>\d+)").unwrap();
    let date = Regex::new(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$").unwrap();
    let word = Regex::new(r"\b\w+\b").unwrap();
    let accented = Regex::new(r"\p{L}*[äöüéèàç]\p{L}*").unwrap();

    let valid_emails = records.iter().filter(|r| email.is_match(&r.email)).count();
    let v2 = records
        .iter()
        .filter_map(|r| url.captures(&r.url))
        .filter(|c| &c["ver"] == "2")
        .count();
    let summer = records
        .iter()
        .filter_map(|r| date.captures(&r.when))
        .filter(|c| matches!(&c[2], "06" | "07" | "08"))
        .count();
    let words: usize = records.iter().map(|r| word.find_iter(&r.message).count()).sum();
    let accents: usize = records
        .iter()
        .map(|r| accented.find_iter(&r.message).count())
        .sum();
    let errors = value
        .as_array()
        .map(|a| a.iter().filter(|r| r["level"] == "error").count())
        .unwrap_or(0);

    println!(
        "{} bytes, {} records: {valid_emails} valid emails, {v2} v2 urls, {summer} summer dates, \
         {words} words, {accents} accented, {errors} errors",
        text.len(),
        records.len()
    );
}
