//! Output: a markdown table per scenario (ready for the README) and, with `--out FILE`, the
//! raw numbers as JSON (`.json`) or CSV (anything else).

use std::fmt::Write as _;

/// A markdown table with notes printed under it.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn markdown(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (cell, w) in cells.iter().zip(&widths) {
                let _ = write!(s, " {cell:>w$} |");
            }
            s.push('\n');
            s
        };
        let mut out = format!("### {}\n\n", self.title);
        out += &line(&self.header);
        out.push('|');
        for w in &widths {
            let _ = write!(out, "{}:|", "-".repeat(w + 1));
        }
        out.push('\n');
        for row in &self.rows {
            out += &line(row);
        }
        for note in &self.notes {
            let _ = write!(out, "\n{note}\n");
        }
        out
    }
}

/// A raw number or label.
#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    Int(u64),
    Float(f64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl Value {
    fn json(&self) -> String {
        match self {
            Value::Text(s) => {
                let mut out = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' => out += "\\\"",
                        '\\' => out += "\\\\",
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }
            Value::Int(v) => v.to_string(),
            Value::Float(v) if v.is_finite() => format!("{v:.4}"),
            Value::Float(_) => "null".into(),
        }
    }

    fn csv(&self) -> String {
        match self {
            Value::Text(s) if s.contains([',', '"', '\n']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Value::Text(s) => s.clone(),
            Value::Int(v) => v.to_string(),
            Value::Float(v) => format!("{v:.4}"),
        }
    }
}

/// One measured configuration, flat.
#[derive(Debug, Clone)]
pub struct Record {
    scenario: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl Record {
    pub fn new(scenario: &'static str, fields: Vec<(&'static str, Value)>) -> Record {
        Record { scenario, fields }
    }
}

/// JSON: an array of objects. CSV: one block per scenario, each with its own header line.
pub fn render_raw(records: &[Record], json: bool) -> String {
    let mut out = String::new();
    if json {
        out.push_str("[\n");
        for (i, r) in records.iter().enumerate() {
            let _ = write!(out, "  {{\"scenario\": \"{}\"", r.scenario);
            for (k, v) in &r.fields {
                let _ = write!(out, ", \"{k}\": {}", v.json());
            }
            out.push('}');
            out.push_str(if i + 1 < records.len() { ",\n" } else { "\n" });
        }
        out.push_str("]\n");
        return out;
    }
    let mut last: Option<(&str, Vec<&str>)> = None;
    for r in records {
        let keys: Vec<&str> = r.fields.iter().map(|(k, _)| *k).collect();
        if last.as_ref() != Some(&(r.scenario, keys.clone())) {
            if last.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "scenario,{}", keys.join(","));
            last = Some((r.scenario, keys));
        }
        let values: Vec<String> = r.fields.iter().map(|(_, v)| v.csv()).collect();
        let _ = writeln!(out, "{},{}", r.scenario, values.join(","));
    }
    out
}
