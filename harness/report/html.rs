//! One self-contained HTML page: every table of a report, its lines, and
//! its charts as inline SVG. No script, no font, no style sheet and no image
//! is loaded from anywhere: the page opens offline, as an artifact.

use super::Section;
use super::chart::Chart;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}\
th{background:#f3f3f3}td:not(:first-child){text-align:right}\
figure{margin:1.5em 0}figcaption{font-size:.9em;color:#444;max-width:960px}\
figure svg{max-width:100%;height:auto;border:1px solid #eee}\
p.line{margin:.3em 0;font-size:.95em}.error{color:#a00}";

fn chart_html(chart: &Chart, out: &mut String) {
    out.push_str("<figure class=\"chart\">\n");
    out.push_str(&format!("<h3>{}</h3>\n", escape(&chart.title)));
    match super::svg::render(chart) {
        Ok(svg) => {
            out.push_str(&svg);
            out.push('\n');
        }
        Err(e) => out.push_str(&format!(
            "<p class=\"error\">This chart could not be drawn: {}</p>\n",
            escape(&e)
        )),
    }
    out.push_str(&format!(
        "<figcaption>{}</figcaption>\n</figure>\n",
        escape(&chart.caption)
    ));
}

/// The page: `title`, then each section's tables, lines and charts.
pub fn page(title: &str, intro: &[String], sections: &[Section]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for line in intro {
        out.push_str(&format!("<p class=\"line\">{}</p>\n", escape(line)));
    }
    for section in sections {
        out.push_str(&format!("<section>\n<h2>{}</h2>\n", escape(&section.title)));
        for table in &section.tables {
            out.push_str("<table>\n<thead><tr>");
            for h in &table.header {
                out.push_str(&format!("<th>{}</th>", escape(h)));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in &table.rows {
                out.push_str("<tr>");
                for cell in row {
                    out.push_str(&format!("<td>{}</td>", escape(cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
        }
        for line in &section.lines {
            out.push_str(&format!("<p class=\"line\">{}</p>\n", escape(line)));
        }
        for chart in &section.charts {
            chart_html(chart, &mut out);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Table;

    #[test]
    fn text_is_escaped_and_nothing_is_fetched() {
        let s = Section {
            title: "a <b> & \"c\"".into(),
            tables: vec![Table {
                header: vec!["<script>".into()],
                rows: vec![vec!["x & y".into()]],
            }],
            lines: vec!["<img src=x>".into()],
            charts: vec![],
        };
        let html = page("t", &[], &[s]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("x &amp; y"));
        assert!(html.contains("&lt;img src=x&gt;"), "{html}");
    }
}
