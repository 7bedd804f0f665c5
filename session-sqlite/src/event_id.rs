//! Event ids: the log's integer keys shown as 20 zero-padded decimal digits, so they sort
//! as strings in log order; and cursors (any string) read back as integer bounds.
//!
//! A cursor is opaque to callers, so it may be any text (an id of this store, of another
//! store, or garbage from a query string). Rather than fail, the store serves exactly what
//! a string comparison would: `after` keeps the ids whose text sorts after the cursor,
//! `before` those that sort before it, as [`MemoryStore`](session_core::MemoryStore) does.

use session_core::events::EventId;

/// Digits in an id's text: `i64::MAX` has 19, one more keeps them all the same width.
const WIDTH: u32 = 20;

/// The text of event `id`.
pub(crate) fn format(id: i64) -> EventId {
    EventId::new(format!("{id:020}"))
}

/// The largest id whose text sorts at or before `cursor` (-1 when none does).
pub(crate) fn at_or_before(cursor: &str) -> i64 {
    let bytes = cursor.as_bytes();
    let digits = bytes
        .iter()
        .take(WIDTH as usize)
        .take_while(|b| b.is_ascii_digit())
        .count();
    // The digits as a number (at most 20 of them: fits an i128).
    let prefix = bytes[..digits]
        .iter()
        .fold(0i128, |n, b| n * 10 + i128::from(b - b'0'));
    let largest = if digits == WIDTH as usize {
        // The cursor starts with a whole id's text: that id sorts at or before it.
        prefix
    } else {
        let scale = 10i128.pow(WIDTH - digits as u32);
        match bytes.get(digits) {
            // Past the digits comes a byte above '9': every id starting with the digits
            // sorts before the cursor, the largest being the digits followed by nines.
            Some(b) if *b > b'9' => (prefix + 1) * scale - 1,
            // The cursor ends there, or a byte below '0' follows: every id starting with
            // the digits sorts after it; the largest before is the one just below them.
            _ => prefix * scale - 1,
        }
    };
    i64::try_from(largest.max(-1)).unwrap_or(i64::MAX)
}

/// The largest id whose text sorts strictly before `cursor` (-1 when none does).
pub(crate) fn before(cursor: &str) -> i64 {
    let id = at_or_before(cursor);
    if id >= 0 && format(id).as_str() == cursor {
        id - 1
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: i64) -> String {
        format(id).as_str().to_owned()
    }

    /// `at_or_before` against the definition: its id's text is `<=` the cursor, and the
    /// next id's is not.
    fn check(cursor: &str) {
        let id = at_or_before(cursor);
        if id >= 0 {
            assert!(text(id).as_str() <= cursor, "{cursor:?}: {id}");
        }
        if id < i64::MAX {
            assert!(text(id + 1).as_str() > cursor, "{cursor:?}: {id}");
        }
        let strict = before(cursor);
        if strict >= 0 {
            assert!(text(strict).as_str() < cursor, "{cursor:?}: {strict}");
        }
        if strict < i64::MAX {
            assert!(text(strict + 1).as_str() >= cursor, "{cursor:?}: {strict}");
        }
    }

    #[test]
    fn ids_sort_as_text_in_log_order() {
        assert_eq!(format(42).as_str(), "00000000000000000042");
        assert!(format(9) < format(10));
        assert!(format(i64::MAX - 1) < format(i64::MAX));
        assert_eq!(format(i64::MAX).as_str().len(), 20);
    }

    #[test]
    fn cursors_bound_exactly_what_a_string_comparison_keeps() {
        assert_eq!(at_or_before("00000000000000000042"), 42);
        assert_eq!(before("00000000000000000042"), 41);
        assert_eq!(at_or_before(""), -1);
        assert_eq!(at_or_before("0"), -1);
        // Every id starting with 0 sorts before "1"; 0999…9 is past i64::MAX.
        assert_eq!(at_or_before("1"), i64::MAX);
        assert_eq!(at_or_before("z"), i64::MAX);
        assert_eq!(at_or_before("99999999999999999999"), i64::MAX);
        assert_eq!(at_or_before("00000000000000000042x"), 42);
        for cursor in [
            "",
            "0",
            "00000000000000000000",
            "00000000000000000001",
            "0000000000000000004",
            "00000000000000000042",
            "00000000000000000042 ",
            "0000000000000000004/",
            "0000000000000000004:",
            "1",
            "09223372036854775807",
            "09223372036854775808",
            "10000000000000000000",
            "ignored",
            "-1",
            "/",
            "ü",
        ] {
            check(cursor);
        }
        // Random strings over digits and their neighbours in ASCII.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"0000000000123456789/:a";
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let cursor: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            check(&cursor);
        }
    }
}
