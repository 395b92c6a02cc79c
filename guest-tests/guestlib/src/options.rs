//! Guest boot options from `/chosen/bootargs`: space separated `key=value`.
//!
//! * `test=<suite>`: which suite to run (required).
//! * `only=<test>`: run only the named test of the suite (debugging).
//! * `plain=1`: running on plain QEMU without parkvisor (development only):
//!   tests that depend on parkvisor-only behaviour are skipped visibly.
//! * anything else is kept and can be read with [`Options::get`].

/// Parsed boot options, borrowing the bootargs string.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    raw: &'a str,
}

impl<'a> Options<'a> {
    pub const fn parse(raw: &'a str) -> Self {
        Self { raw }
    }

    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value of the last `key=value` token with this key; a bare `key`
    /// token yields `Some("")`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let mut found = None;
        for tok in self.raw.split_ascii_whitespace() {
            match tok.split_once('=') {
                Some((k, v)) if k == key => found = Some(v),
                None if tok == key => found = Some(""),
                _ => {}
            }
        }
        found
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        if let Some(hex) = v.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()
        } else {
            v.parse().ok()
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("" | "1" | "y" | "yes" | "on" | "true"))
    }

    /// The selected suite (`test=`).
    pub fn suite(&self) -> Option<&'a str> {
        self.get("test").filter(|s| !s.is_empty())
    }

    /// `only=`: a single test of the suite.
    pub fn only(&self) -> Option<&'a str> {
        self.get("only").filter(|s| !s.is_empty())
    }

    /// `plain=1`: no hypervisor underneath (plain QEMU PSCI).
    pub fn plain(&self) -> bool {
        self.flag("plain")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        let o = Options::parse("  test=psci only=cpu_on_race plain=1 rounds=0x10 verbose ");
        assert_eq!(o.suite(), Some("psci"));
        assert_eq!(o.only(), Some("cpu_on_race"));
        assert!(o.plain());
        assert_eq!(o.get_u64("rounds"), Some(16));
        assert!(o.flag("verbose"));
        assert!(!o.flag("missing"));
    }

    #[test]
    fn last_value_wins_and_empty_suite_is_none() {
        let o = Options::parse("test= test=demo");
        assert_eq!(o.suite(), Some("demo"));
        let o = Options::parse("test=");
        assert_eq!(o.suite(), None);
        assert!(!o.plain());
    }
}
