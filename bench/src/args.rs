//! A small `--key value` parser: the bench takes a handful of options and its children take
//! their parameters the same way, so a full CLI framework would only cost compile time.

use std::collections::HashMap;
use std::str::FromStr;

use crate::proc::BenchResult;

#[derive(Debug, Clone, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `--key value` and `--key=value` pairs; anything else is an error.
    pub fn parse(words: &[String]) -> BenchResult<Args> {
        let mut values = HashMap::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let Some(key) = word.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument `{word}` (options are --key value)"
                ));
            };
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => {
                    let value = words
                        .next()
                        .ok_or_else(|| format!("--{key} needs a value"))?;
                    (key.to_owned(), value.clone())
                }
            };
            values.insert(key, value);
        }
        Ok(Args { values })
    }

    /// Fails on options not in `known` (typos would otherwise be silently ignored).
    pub fn only(&self, known: &[&str]) -> BenchResult<()> {
        for key in self.values.keys() {
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "unknown option --{key} (known: {})",
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn required(&self, key: &str) -> BenchResult<&str> {
        self.str(key).ok_or_else(|| format!("missing --{key}"))
    }

    pub fn get<T: FromStr>(&self, key: &str, default: T) -> BenchResult<T> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse `{v}`")),
        }
    }

    pub fn need<T: FromStr>(&self, key: &str) -> BenchResult<T> {
        let v = self.required(key)?;
        v.parse()
            .map_err(|_| format!("--{key}: cannot parse `{v}`"))
    }

    /// A comma-separated list.
    pub fn list<T: FromStr + Clone>(&self, key: &str, default: &[T]) -> BenchResult<Vec<T>> {
        match self.str(key) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim()
                        .parse()
                        .map_err(|_| format!("--{key}: cannot parse `{s}`"))
                })
                .collect(),
        }
    }
}

/// Builds a child's argument list from pairs.
pub fn child_args(role: &str, pairs: &[(&str, String)]) -> Vec<String> {
    let mut out = vec![role.to_owned()];
    for (k, v) in pairs {
        out.push(format!("--{k}"));
        out.push(v.clone());
    }
    out
}
