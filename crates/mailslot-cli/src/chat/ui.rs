//! Drawing the chat with ratatui: the list of popups, the compose fields, a notice line, the
//! status line and the key help. Reads the model, changes nothing.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::model::{Entry, EntryKind, Focus, Model, Notice, SentState, MAILSLOT};
use super::text;

const HELP: &str =
    "Enter send · Tab To/Message · ↑↓ PgUp/PgDn scroll · Ctrl-U clear · Esc quit · To: . * or a name";
/// Width of the To field's box.
const TO_WIDTH: u16 = 22;

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, model: &Model) {
    let notice = model.notice.as_ref().map(|n| match n {
        Notice::Info(t) => (t.clone(), Style::new().fg(Color::Green)),
        Notice::Error(t) => (
            t.clone(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    });
    // A long notice (a refusal with its limit) gets the lines it needs, up to three.
    let area = frame.area();
    let notice_width = usize::from(area.width).saturating_sub(1).max(1);
    let notice_rows = notice.as_ref().map_or(1, |(text, _)| {
        let lines = text::wrap(text, notice_width).len();
        u16::try_from(lines.clamp(1, 3)).unwrap_or(1)
    });
    let [list, compose, notice_area, status, help] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(notice_rows),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_list(frame, model, list);
    draw_compose(frame, model, compose);
    if let Some((text, style)) = notice {
        let lines: Vec<Line<'static>> = text::wrap(&text, notice_width)
            .into_iter()
            .map(|piece| Line::from(Span::styled(format!(" {piece}"), style)))
            .collect();
        frame.render_widget(Paragraph::new(lines), notice_area);
    }
    frame.render_widget(
        Paragraph::new(format!(" {}", model.status()))
            .style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );
    frame.render_widget(
        Paragraph::new(Span::styled(format!(" {HELP}"), dim())),
        help,
    );
}

fn draw_list(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let mut title = format!(" {MAILSLOT} · mailslot chat ");
    if model.scroll > 0 {
        title.push_str(&format!("· {} newer below ", model.scroll));
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = usize::from(inner.height);
    let width = usize::from(inner.width);
    let visible = model.entries.len().saturating_sub(model.scroll);
    // Fill from the bottom up with the newest visible entries.
    let mut lines: Vec<Line<'static>> = Vec::new();
    for entry in model.entries.iter().take(visible).rev() {
        let mut own = entry_lines(entry, width);
        own.append(&mut lines);
        lines = own;
        if lines.len() >= height {
            break;
        }
    }
    let skip = lines.len().saturating_sub(height);
    let lines: Vec<Line<'static>> = lines.into_iter().skip(skip).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The lines of one entry at `width` columns: a header, then the text indented.
fn entry_lines(entry: &Entry, width: usize) -> Vec<Line<'static>> {
    let clock = Span::styled(format!("{} ", entry.clock), dim());
    let (header, body): (Vec<Span<'static>>, &[String]) = match &entry.kind {
        EntryKind::Received(r) => {
            let mut spans = vec![
                clock,
                Span::styled(
                    r.from.clone(),
                    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::styled(format!("@{}", r.host), Style::new().fg(Color::Cyan)),
                Span::styled(format!(" ({})", r.via), dim()),
                Span::raw(" → "),
            ];
            let to_style = if r.to_me {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            spans.push(Span::styled(r.to.clone(), to_style));
            if let Some(note) = &r.note {
                spans.push(Span::styled(
                    format!(" [{note}]"),
                    Style::new().fg(Color::Yellow),
                ));
            }
            (spans, &r.lines)
        }
        EntryKind::Sent(s) => {
            let mut spans = vec![
                clock,
                Span::styled(
                    "you",
                    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" → {} ", s.to)),
            ];
            spans.push(match &s.state {
                SentState::Sending => Span::styled("… sending", Style::new().fg(Color::Yellow)),
                SentState::Done(to) => {
                    Span::styled(format!("✓ sent ({to})"), Style::new().fg(Color::Green))
                }
                SentState::Failed(why) => {
                    Span::styled(format!("✗ not sent: {why}"), Style::new().fg(Color::Red))
                }
            });
            if s.seen_here {
                spans.push(Span::styled(" · seen here", dim()));
            }
            (spans, &s.lines)
        }
        EntryKind::System(t) => {
            let style = Style::new().fg(Color::Magenta);
            return text::wrap(&format!("{} * {t}", entry.clock), width)
                .into_iter()
                .map(|piece| Line::from(Span::styled(piece, style)))
                .collect();
        }
    };
    let mut lines = wrap_spans(header, width);
    let indent = 2.min(width.saturating_sub(1));
    for line in body {
        for piece in text::wrap(line, width.saturating_sub(indent)) {
            lines.push(Line::from(format!("{}{piece}", " ".repeat(indent))));
        }
    }
    lines
}

/// Wraps a styled header to `width` columns (headers are short; a long name or note may
/// still need a second line).
fn wrap_spans(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    fn flush(lines: &mut [Vec<Span<'static>>], piece: &mut String, style: Style) {
        if let (false, Some(line)) = (piece.is_empty(), lines.last_mut()) {
            line.push(Span::styled(std::mem::take(piece), style));
        }
    }
    let width = width.max(1);
    let mut lines = vec![Vec::new()];
    let mut used = 0;
    for span in spans {
        let style = span.style;
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = text::char_width(c);
            if used + w > width && used > 0 {
                flush(&mut lines, &mut piece, style);
                lines.push(Vec::new());
                used = 0;
            }
            used += w;
            piece.push(c);
        }
        flush(&mut lines, &mut piece, style);
    }
    lines.into_iter().map(Line::from).collect()
}

fn draw_compose(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let [to_area, text_area] =
        Layout::horizontal([Constraint::Length(TO_WIDTH), Constraint::Min(10)]).areas(area);
    let focused = Style::new().fg(Color::Yellow);
    let (to_title, counter_style, text_title) = match model.counter() {
        Ok((used, max)) => {
            let style = if used > max {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            (" To ".to_owned(), style, format!(" Message {used}/{max} "))
        }
        Err(_) => (
            " To (invalid) ".to_owned(),
            Style::new().fg(Color::Red),
            " Message ".to_owned(),
        ),
    };
    for (area, title, field, focus, title_style) in [
        (to_area, to_title, &model.to, Focus::To, Style::new()),
        (
            text_area,
            text_title,
            &model.text,
            Focus::Text,
            counter_style,
        ),
    ] {
        let mut block = Block::bordered().title(Span::styled(title, title_style));
        if model.focus == focus {
            block = block.border_style(focused);
        }
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let (shown, cursor) = field.view(usize::from(inner.width));
        frame.render_widget(Paragraph::new(shown), inner);
        if model.focus == focus {
            let x = inner.x
                + u16::try_from(cursor)
                    .unwrap_or(inner.width)
                    .min(inner.width);
            frame.set_cursor_position(Position::new(x, inner.y));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mailslot::{Message, Source};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::model::{Key, Me, Stamp};
    use super::*;

    fn screen(model: &Model, w: u16, h: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| draw(f, model)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn draws_popups_compose_status_and_help() {
        let me = Me {
            from: "ALICE".into(),
            netbios_name: "HOSTA".into(),
            workgroup: "WORKGROUP".into(),
            pid: 1,
            uid: 0,
            network: false,
            local_limit: super::super::model::LOCAL_LIMIT,
            quiet: false,
        };
        let mut model = Model::new(me, "*");
        let s = Stamp {
            at: Instant::now(),
            clock: "12:34:56".into(),
        };
        model.on_message(
            &Message {
                data: b"BOB\0WORKGROUP\0hello there\x07\0".to_vec(),
                source: Source::Local { pid: 7, uid: 0 },
                lost: 0,
            },
            &s,
        );
        for c in "hi bob".chars() {
            model.on_key(Key::Char(c), &s);
        }
        model.on_key(Key::Enter, &s);
        for c in "draft".chars() {
            model.on_key(Key::Char(c), &s);
        }
        let out = screen(&model, 100, 14);
        assert!(
            out.contains("12:34:56 BOB@HOSTA (this host, pid 7) → WORKGROUP"),
            "{out}"
        );
        assert!(out.contains("  hello there^G"), "{out}");
        assert!(out.contains("you → * (WORKGROUP) … sending"), "{out}");
        assert!(out.contains(" Message 5/"), "{out}");
        assert!(out.contains("draft"), "{out}");
        assert!(
            out.contains("ALICE@HOSTA · WORKGROUP · network off"),
            "{out}"
        );
        assert!(out.contains("Enter send"), "{out}");
        // A narrow screen wraps instead of cutting.
        let out = screen(&model, 30, 14);
        assert!(out.contains("hello"), "{out}");
    }

    #[test]
    fn long_lists_show_the_newest_at_the_bottom() {
        let me = Me {
            from: "A".into(),
            netbios_name: "H".into(),
            workgroup: "W".into(),
            pid: 1,
            uid: 0,
            network: false,
            local_limit: super::super::model::LOCAL_LIMIT,
            quiet: false,
        };
        let mut model = Model::new(me, "*");
        let s = Stamp {
            at: Instant::now(),
            clock: "00:00:00".into(),
        };
        for i in 0..40 {
            model.on_report(&format!("line {i}"), &s);
        }
        let out = screen(&model, 60, 12);
        assert!(out.contains("* line 39"), "{out}");
        assert!(!out.contains("* line 30"), "{out}");
        model.on_key(Key::PageUp, &s);
        let out = screen(&model, 60, 12);
        assert!(out.contains("* line 34"), "{out}");
        assert!(!out.contains("* line 35"), "{out}");
        assert!(out.contains("5 newer below"), "{out}");
    }
}
