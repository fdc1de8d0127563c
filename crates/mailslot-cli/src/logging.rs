//! Diagnostics on standard error through `tracing`: one line per event, `mailslot: ` first,
//! then the level unless it is plain information (`mailslot: warning: ...`).
//!
//! What the user asked for goes to standard output and is never logged: messages, tables,
//! JSON. The line of the error that ends the command is printed by `main` directly, so that
//! no filter can hide it.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::options::LogArgs;

/// Sends this process's events to standard error, filtered by `-q`, `-v`, `-vv`, else by
/// `RUST_LOG`, else at `info`.
pub fn init(log: LogArgs) {
    let directives = match (log.quiet, log.verbose) {
        (true, _) => Some("error"),
        (false, 0) => None,
        (false, 1) => Some("info,mailslot=debug"),
        (false, _) => Some("debug,mailslot=trace"),
    };
    let filter = match directives {
        Some(directives) => EnvFilter::new(directives),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // A second subscriber cannot exist in this process: ignore the impossible error.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .event_format(Line)
        .try_init();
}

/// `mailslot: [level: ]message key=value ...`
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("mailslot: ")?;
        match *event.metadata().level() {
            Level::INFO => {}
            Level::WARN => writer.write_str("warning: ")?,
            Level::ERROR => writer.write_str("error: ")?,
            Level::DEBUG => writer.write_str("debug: ")?,
            Level::TRACE => writer.write_str("trace: ")?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
