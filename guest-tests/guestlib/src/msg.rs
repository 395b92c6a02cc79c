//! A fixed-size, allocation-free text buffer used for failure reasons.

use core::fmt;

/// Capacity of a [`Msg`] in bytes. Longer text is truncated (marked `...`).
pub const MSG_CAP: usize = 240;

/// A short message built with `core::fmt`, truncated at [`MSG_CAP`] bytes on
/// a UTF-8 boundary.
#[derive(Clone)]
pub struct Msg {
    buf: [u8; MSG_CAP],
    len: usize,
    truncated: bool,
}

impl Msg {
    pub const fn new() -> Self {
        Self {
            buf: [0; MSG_CAP],
            len: 0,
            truncated: false,
        }
    }

    /// Builds a message from format arguments.
    pub fn from_args(args: fmt::Arguments) -> Self {
        let mut m = Self::new();
        let _ = fmt::Write::write_fmt(&mut m, args);
        m
    }

    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 sequences are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<bad utf8>")
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for Msg {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = MSG_CAP - self.len;
        if s.len() <= room {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            return Ok(());
        }
        // Keep 3 bytes for "...", cut on a char boundary.
        let mut cut = room.saturating_sub(3);
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
        self.len += cut;
        let dots = b"...";
        let n = dots.len().min(MSG_CAP - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&dots[..n]);
        self.len += n;
        self.truncated = true;
        Ok(())
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// `msg!("fmt", args..)` builds a [`Msg`].
#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => { $crate::msg::Msg::from_args(format_args!($($arg)*)) };
}

/// `ensure!(cond, "fmt", args..)`: return `Err(msg)` from the enclosing test
/// when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !($cond) {
            return Err($crate::msg!($($arg)*));
        }
    };
}

/// `ensure_eq!(left, right, "what")`: fail with both values when they differ.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)*) => {{
        let (l, r) = (&$left, &$right);
        if *l != *r {
            return Err($crate::msg!("{}: got {:?}, expected {:?}", format_args!($($arg)*), l, r));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        let m = msg!("cpu{} x0={:#x}", 3, 0x1234);
        assert_eq!(m.as_str(), "cpu3 x0=0x1234");
        assert!(!m.is_truncated());
    }

    #[test]
    fn long_text_is_truncated_on_char_boundary() {
        let long = "é".repeat(400);
        let m = msg!("{long}");
        assert!(m.is_truncated());
        assert!(m.as_str().ends_with("..."));
        assert!(m.as_str().len() <= MSG_CAP);
    }

    fn failing(x: u32) -> Result<(), Msg> {
        ensure!(x < 3, "x too big: {}", x);
        ensure_eq!(x, 1, "x");
        Ok(())
    }

    #[test]
    fn ensure_macros() {
        assert!(failing(1).is_ok());
        assert_eq!(failing(5).unwrap_err().as_str(), "x too big: 5");
        assert_eq!(failing(2).unwrap_err().as_str(), "x: got 2, expected 1");
    }
}
