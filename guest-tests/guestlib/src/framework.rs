//! A tiny test framework: named tests grouped into suites, one line per test
//! on the serial port, a final summary line.
//!
//! Output lines (all start with `GUEST `, parsed by the host harness):
//!
//! ```text
//! GUEST PLAN <suite> run=<r> skip=<s>
//! GUEST run <test>                 (before each test, to locate hangs)
//! GUEST ok <test>
//! GUEST FAIL <test>: <why>
//! GUEST skip <test>: <why>
//! GUEST DONE <suite> passed=<n> failed=<m>
//! ```

use crate::msg::Msg;
use core::fmt;

/// What a test returns: `Err(reason)` fails it.
pub type TestResult = Result<(), Msg>;

/// Decides whether a test can run here; `Some(reason)` skips it visibly.
pub type SkipFn<E> = fn(&E) -> Option<Msg>;

/// One test of a suite.
pub struct Test<E: 'static> {
    pub name: &'static str,
    /// Skipped (visibly) when the machine has fewer CPUs.
    pub min_cpus: usize,
    /// Extra skip condition (e.g. only meaningful under parkvisor).
    pub skip_if: Option<SkipFn<E>>,
    pub run: fn(&E) -> TestResult,
}

impl<E> Test<E> {
    /// A test that runs on any number of CPUs.
    pub const fn new(name: &'static str, run: fn(&E) -> TestResult) -> Self {
        Self {
            name,
            min_cpus: 1,
            skip_if: None,
            run,
        }
    }

    /// A test that needs at least `n` CPUs.
    pub const fn cpus(mut self, n: usize) -> Self {
        self.min_cpus = n;
        self
    }

    pub const fn skip_if(mut self, f: SkipFn<E>) -> Self {
        self.skip_if = Some(f);
        self
    }
}

/// A named list of tests.
pub struct Suite<E: 'static> {
    pub name: &'static str,
    pub tests: &'static [Test<E>],
}

/// Counters of a suite run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// How the runner talks to the world: output lines, and a hook run after each
/// test (e.g. to put every secondary CPU back to OFF); a hook error fails the
/// test.
pub trait Host<E> {
    fn line(&mut self, args: fmt::Arguments<'_>);
    fn ncpus(&self, env: &E) -> usize;
    fn before_test(&mut self, _name: &'static str) {}
    fn after_test(&mut self, _env: &E) -> TestResult {
        Ok(())
    }
}

enum Plan {
    Run,
    Skip(Msg),
}

fn plan<E>(t: &Test<E>, env: &E, ncpus: usize, only: Option<&str>) -> Option<Plan> {
    if only.is_some_and(|o| o != t.name) {
        return None;
    }
    if ncpus < t.min_cpus {
        return Some(Plan::Skip(crate::msg!(
            "needs {} CPUs, have {}",
            t.min_cpus,
            ncpus
        )));
    }
    if let Some(f) = t.skip_if
        && let Some(why) = f(env)
    {
        return Some(Plan::Skip(why));
    }
    Some(Plan::Run)
}

/// Runs a suite (or the test `only` of it) and prints its lines. Does not
/// power anything off.
pub fn run_suite<E, H: Host<E>>(
    suite: &Suite<E>,
    env: &E,
    only: Option<&str>,
    host: &mut H,
) -> Summary {
    let ncpus = host.ncpus(env);
    let mut sum = Summary::default();
    let (mut run, mut skip) = (0, 0);
    for t in suite.tests {
        match plan(t, env, ncpus, only) {
            Some(Plan::Run) => run += 1,
            Some(Plan::Skip(_)) => skip += 1,
            None => {}
        }
    }
    host.line(format_args!(
        "GUEST PLAN {} run={} skip={}",
        suite.name, run, skip
    ));
    if run + skip == 0 {
        host.line(format_args!(
            "GUEST FAIL {}: no test named {:?}",
            suite.name,
            only.unwrap_or("")
        ));
        sum.failed += 1;
    }
    for t in suite.tests {
        match plan(t, env, ncpus, only) {
            None => {}
            Some(Plan::Skip(why)) => {
                host.line(format_args!("GUEST skip {}: {}", t.name, why));
                sum.skipped += 1;
            }
            Some(Plan::Run) => {
                host.before_test(t.name);
                host.line(format_args!("GUEST run {}", t.name));
                let mut res = (t.run)(env);
                let after = host.after_test(env);
                if res.is_ok()
                    && let Err(e) = after
                {
                    res = Err(crate::msg!("cleanup after test: {}", e));
                }
                match res {
                    Ok(()) => {
                        host.line(format_args!("GUEST ok {}", t.name));
                        sum.passed += 1;
                    }
                    Err(why) => {
                        host.line(format_args!("GUEST FAIL {}: {}", t.name, why));
                        sum.failed += 1;
                    }
                }
            }
        }
    }
    host.line(format_args!(
        "GUEST DONE {} passed={} failed={}",
        suite.name, sum.passed, sum.failed
    ));
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    struct Rec {
        lines: Vec<String>,
        ncpus: usize,
        fail_cleanup_after: Option<&'static str>,
        current: &'static str,
    }

    impl Host<u32> for Rec {
        fn line(&mut self, args: fmt::Arguments<'_>) {
            self.lines.push(std::format!("{args}"));
        }
        fn ncpus(&self, _env: &u32) -> usize {
            self.ncpus
        }
        fn before_test(&mut self, name: &'static str) {
            self.current = name;
        }
        fn after_test(&mut self, _env: &u32) -> TestResult {
            if self.fail_cleanup_after == Some(self.current) {
                Err(crate::msg!("cpu1 still ON"))
            } else {
                Ok(())
            }
        }
    }

    fn pass(_: &u32) -> TestResult {
        Ok(())
    }
    fn fail(e: &u32) -> TestResult {
        crate::ensure!(*e == 0, "env was {}", e);
        Ok(())
    }
    fn never(_: &u32) -> Option<Msg> {
        Some(crate::msg!("not here"))
    }

    static TESTS: [Test<u32>; 4] = [
        Test::new("a", pass),
        Test::new("b", fail),
        Test::new("c", pass).cpus(2),
        Test::new("d", pass).skip_if(never),
    ];
    static SUITE: Suite<u32> = Suite {
        name: "demo",
        tests: &TESTS,
    };

    fn rec(ncpus: usize) -> Rec {
        Rec {
            lines: Vec::new(),
            ncpus,
            fail_cleanup_after: None,
            current: "",
        }
    }

    #[test]
    fn runs_and_reports() {
        let mut h = rec(1);
        let s = run_suite(&SUITE, &7, None, &mut h);
        assert_eq!(
            s,
            Summary {
                passed: 1,
                failed: 1,
                skipped: 2
            }
        );
        assert_eq!(
            h.lines,
            [
                "GUEST PLAN demo run=2 skip=2",
                "GUEST run a",
                "GUEST ok a",
                "GUEST run b",
                "GUEST FAIL b: env was 7",
                "GUEST skip c: needs 2 CPUs, have 1",
                "GUEST skip d: not here",
                "GUEST DONE demo passed=1 failed=1",
            ]
        );
    }

    #[test]
    fn only_one_and_cleanup_failure() {
        let mut h = rec(2);
        h.fail_cleanup_after = Some("c");
        let s = run_suite(&SUITE, &0, Some("c"), &mut h);
        assert_eq!(
            s,
            Summary {
                passed: 0,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(h.lines[0], "GUEST PLAN demo run=1 skip=0");
        assert_eq!(
            h.lines[2],
            "GUEST FAIL c: cleanup after test: cpu1 still ON"
        );
    }

    #[test]
    fn unknown_only_fails() {
        let mut h = rec(2);
        let s = run_suite(&SUITE, &0, Some("zz"), &mut h);
        assert_eq!(s.failed, 1);
        assert!(
            h.lines
                .iter()
                .any(|l| l.starts_with("GUEST FAIL demo: no test named"))
        );
    }
}
