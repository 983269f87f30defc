//! Bounds on the text that comes out of a guest.
//!
//! A model's error messages, its stderr and what `describe` says reach the
//! terminal, logs, the HTTP API, metrics and Redis. A hostile or broken
//! model could make any of them tens of megabytes, or put terminal escape
//! sequences in them, so every guest string is cut here, as it leaves the
//! runtime, before anything else sees it.

/// Longest error message or description kept from a guest, in bytes.
pub const GUEST_TEXT_LIMIT: usize = 4 * 1024;

/// Longest model name, version or parameter name, in bytes. These are
/// identifiers (metric labels, configuration keys), so a longer one is
/// refused at load rather than cut: two names cut to one prefix would
/// collide.
pub const GUEST_NAME_LIMIT: usize = 64;

/// Most parameters a model may declare.
pub const GUEST_PARAMS_LIMIT: usize = 64;

/// `text` cut to at most `limit` bytes at a character boundary, with a
/// marker saying how much was cut, and with control characters other than
/// tab (and newline, where `multiline`), line and paragraph separators and
/// bidirectional overrides replaced by U+FFFD, so a model can neither start
/// a line of its own in a log nor drive a terminal nor reorder what is shown.
pub fn bounded(text: &str, limit: usize, multiline: bool) -> String {
    let mut out = String::with_capacity(limit.min(text.len()));
    let mut consumed = 0;
    for c in text.chars() {
        let kept = !unsafe_char(c) || c == '\t' || (multiline && c == '\n');
        let shown = if kept { c } else { '\u{FFFD}' };
        if out.len() + shown.len_utf8() > limit {
            break;
        }
        out.push(shown);
        consumed += c.len_utf8();
    }
    if consumed < text.len() {
        out.push_str(&format!(" [cut: {} more bytes]", text.len() - consumed));
    }
    out
}

/// Characters that are not shown as they are: controls, Unicode line and
/// paragraph separators, and bidirectional embeddings, overrides and
/// isolates.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A guest's message (an error, stderr): one line, at most
/// [`GUEST_TEXT_LIMIT`] bytes plus the marker.
pub fn message(text: &str) -> String {
    bounded(text, GUEST_TEXT_LIMIT, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_passes_as_it_is() {
        assert_eq!(message("no data yet"), "no data yet");
        assert_eq!(bounded("a\nb\tc", 100, true), "a\nb\tc");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_so() {
        let text = "é".repeat(3000); // 6 000 bytes
        let cut = message(&text);
        assert!(cut.starts_with(&"é".repeat(2048)), "{}", &cut[..20]);
        assert!(cut.ends_with(" [cut: 1904 more bytes]"), "{}", &cut[4090..]);
        assert!(cut.len() < GUEST_TEXT_LIMIT + 40);
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(
            message("a\nb\u{1b}[31mred\r"),
            "a\u{FFFD}b\u{FFFD}[31mred\u{FFFD}"
        );
        assert_eq!(bounded("line\nnext\u{7}", 100, true), "line\nnext\u{FFFD}");
        assert_eq!(message("a\u{2028}b\u{202E}c"), "a\u{FFFD}b\u{FFFD}c");
    }
}
