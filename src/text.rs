//! Text written by hand, without `core::fmt`: decimals, zero-padded decimals, lowercase
//! hex and JSON strings appended to a `String`. It is what the service writes on every
//! request: the job, the success replies and the log line, Redis keys and
//! `Content-Length`, request ids.
//!
//! `format!`, `to_string` and serde_json are the clearer tools, but in a component that
//! lives for one request their machinery (formatting traits, dynamic dispatch, many small
//! copies) costs more guest CPU on the hot path than the rest of a warm request; the
//! figures are in `bench/README.md` ("Figures behind comments in src/"). The writers
//! produce the same bytes `to_string` and serde_json do; the tests below hold them to it.

/// Appends `text` as a JSON string, quotes included, escaped exactly as serde_json
/// escapes it: `"` and `\`, and the control characters below U+0020 (as `\b`, `\t`, `\n`,
/// `\f`, `\r`, or `\u00XX`). Everything else, multi-byte UTF-8 included, is written as
/// it is, which JSON allows.
pub fn push_json_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut clean_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `at` is on a character boundary: every byte matched above is ASCII.
        out.push_str(&text[clean_from..at]);
        if escape.is_empty() {
            out.push_str("\\u00");
            push_hex(out, &[byte]);
        } else {
            out.push_str(escape);
        }
        clean_from = at + 1;
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// Appends `n` in decimal, with a `-` when negative.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` in decimal, left-padded with zeros to `width` digits (a number with more
/// digits is written whole).
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = n;
    while rest > 0 {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = at.min(digits.len().saturating_sub(width));
    push_ascii(out, &digits[start..]);
}

/// Appends `bytes` as lowercase hexadecimal, two digits a byte.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Appends bytes that are known to be ASCII digits.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    for &byte in ascii {
        out.push(char::from(byte));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, text);
        out
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for text in [
            "",
            "plain",
            "héllo 👋 \"quoted\"\nline\\ \u{1}",
            "\u{7f}\u{80}\u{2028}\u{2029}\u{feff}",
            "\"\"\\\\",
            "end with escape\n",
            &every_ascii,
        ] {
            assert_eq!(
                string(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn strings_from_a_generator_match_serde_json() {
        // A deterministic mix biased towards what needs escaping.
        const PIECES: &[&str] = &[
            "a", "\"", "\\", "\n", "\u{0}", "\u{1f}", "é", "👋", " ", "\t",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            assert_eq!(string(&text), serde_json::to_string(&text).unwrap());
        }
    }

    #[test]
    fn decimals_match_to_string_and_pad_with_zeros_to_the_width() {
        let mut out = String::new();
        for n in [0, 7, 10, 2_147_483_647, u64::MAX] {
            out.clear();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for n in [i64::MIN, -1, 0, 42, i64::MAX] {
            out.clear();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for (n, width, expected) in [
            (0, 2, "00"),
            (5, 9, "000000005"),
            (2026, 4, "2026"),
            (12345, 2, "12345"),
            (0, 0, ""),
        ] {
            out.clear();
            push_padded(&mut out, n, width);
            assert_eq!(out, expected, "{n} {width}");
        }
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x0f, 0xab, 0xff]);
        assert_eq!(out, "000fabff");
    }
}
