//! Reporting: turns a result into a document of sections and tables, then
//! renders it for a terminal, as Markdown, or as JSON.
//!
//! Nothing here measures or judges; it only presents a `BenchmarkResult`.

pub mod chart;
pub mod cited;
mod document;
pub use document::RUN_TARGET_KEY;
pub mod export;
pub mod format;
pub mod html;
mod svg;

pub use document::{Document, Section, Table, document, native_ratios};

use crate::model::BenchmarkResult;

/// An output format.
pub trait Exporter {
    /// Renders the whole result.
    fn render(&self, result: &BenchmarkResult) -> String;
}

/// Aligned plain-text tables for a terminal.
pub struct Terminal;
/// GitHub-flavoured Markdown, fit for a job summary.
pub struct Markdown;
/// The versioned JSON schema (README.md, "JSON schema").
pub struct Json;
/// One self-contained HTML page: every table, and every chart as inline SVG.
pub struct Html;

impl Exporter for Html {
    fn render(&self, result: &BenchmarkResult) -> String {
        let doc = document(result);
        html::page(&doc.title, &[], &doc.sections)
    }
}

impl Exporter for Json {
    fn render(&self, result: &BenchmarkResult) -> String {
        let mut s = serde_json::to_string_pretty(result).expect("results always serialise");
        s.push('\n');
        s
    }
}

impl Exporter for Terminal {
    fn render(&self, result: &BenchmarkResult) -> String {
        let doc = document(result);
        let mut out = String::new();
        out.push_str(&doc.title);
        out.push('\n');
        out.push_str(&"=".repeat(doc.title.chars().count().min(100)));
        out.push('\n');
        for section in &doc.sections {
            out.push('\n');
            out.push_str(&section.title);
            out.push('\n');
            out.push_str(&"-".repeat(section.title.chars().count()));
            out.push('\n');
            for table in &section.tables {
                out.push_str(&text_table(table));
            }
            for line in &section.lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Exporter for Markdown {
    fn render(&self, result: &BenchmarkResult) -> String {
        let doc = document(result);
        let mut out = format!("## {}\n", doc.title);
        for section in &doc.sections {
            out.push_str(&format!("\n### {}\n\n", section.title));
            for table in &section.tables {
                out.push_str(&markdown_table(table));
                out.push('\n');
            }
            for line in &section.lines {
                out.push_str(line);
                out.push_str("  \n");
            }
            for c in section.charts.iter().filter_map(chart::mermaid) {
                out.push('\n');
                out.push_str(&c);
            }
        }
        out
    }
}

/// A table as aligned plain text: first column left, the rest right.
pub fn text_table(t: &Table) -> String {
    let cols = t.header.len();
    let mut width = vec![0usize; cols];
    for row in std::iter::once(&t.header).chain(&t.rows) {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |row: &Vec<String>, out: &mut String| {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = width[i].saturating_sub(c.chars().count());
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    };
    line(&t.header, &mut out);
    out.push_str(
        &width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in &t.rows {
        line(row, &mut out);
    }
    out
}

/// A table as a GitHub-flavoured Markdown table.
pub fn markdown_table(t: &Table) -> String {
    let esc = |s: &String| s.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n",
        t.header.iter().map(esc).collect::<Vec<_>>().join(" | ")
    );
    out.push_str(&format!(
        "|{}\n",
        t.header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    ));
    for row in &t.rows {
        out.push_str(&format!(
            "| {} |\n",
            row.iter().map(esc).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}
