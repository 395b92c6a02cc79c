//! The suites. To add one: write `suites/<name>.rs` exposing a
//! `pub static SUITE: Suite<Env>` (or a custom `fn(&Env) -> !`), and list it
//! in [`ENTRIES`]. The host harness has its own table of what each suite must
//! show (`guest-tests/harness/src/suites.rs`).

use core::fmt;
use guestlib::Env;
use guestlib::framework::Suite;

pub mod bench;
pub mod board;
pub mod busy;
pub mod common;
pub mod containment;
pub mod demo;
pub mod exception;
pub mod fast_stop;
pub mod fuzz;
pub mod fuzz_gic;
pub mod gic_off;
pub mod hostile;
pub mod ipi;
pub mod isolation;
pub mod power;
pub mod psci;
pub mod ram;
pub mod silent;
pub mod stress;
pub mod vendor;

/// How a suite runs.
pub enum Kind {
    /// Run the tests, print DONE, SYSTEM_OFF.
    Tests(&'static Suite<Env>),
    /// A suite that ends the system itself.
    Custom(fn(&'static Env) -> !),
}

pub struct Entry {
    pub name: &'static str,
    pub kind: Kind,
}

pub static ENTRIES: &[Entry] = &[
    Entry {
        name: "psci",
        kind: Kind::Tests(&psci::SUITE),
    },
    Entry {
        name: "vendor",
        kind: Kind::Tests(&vendor::SUITE),
    },
    Entry {
        name: "containment",
        kind: Kind::Tests(&containment::SUITE),
    },
    Entry {
        name: "demo",
        kind: Kind::Tests(&demo::SUITE),
    },
    Entry {
        name: "fast_stop",
        kind: Kind::Tests(&fast_stop::SUITE),
    },
    Entry {
        name: "fuzz",
        kind: Kind::Tests(&fuzz::SUITE),
    },
    Entry {
        name: "gic_off",
        kind: Kind::Tests(&gic_off::SUITE),
    },
    Entry {
        name: "ipi",
        kind: Kind::Tests(&ipi::SUITE),
    },
    Entry {
        name: "isolation",
        kind: Kind::Tests(&isolation::SUITE),
    },
    Entry {
        name: "scale",
        kind: Kind::Tests(&isolation::SCALE),
    },
    Entry {
        name: "bench",
        kind: Kind::Tests(&bench::SUITE),
    },
    Entry {
        name: "exception",
        kind: Kind::Tests(&exception::SUITE),
    },
    Entry {
        name: "stress",
        kind: Kind::Tests(&stress::SUITE),
    },
    Entry {
        name: "hostile",
        kind: Kind::Tests(&hostile::SUITE),
    },
    Entry {
        name: "ram",
        kind: Kind::Tests(&ram::SUITE),
    },
    Entry {
        name: "silent",
        kind: Kind::Custom(silent::run),
    },
    Entry {
        name: "system_off2",
        kind: Kind::Custom(power::system_off2),
    },
    Entry {
        name: "system_off",
        kind: Kind::Custom(power::system_off),
    },
    Entry {
        name: "system_reset",
        kind: Kind::Custom(power::system_reset),
    },
    Entry {
        name: "system_reset2",
        kind: Kind::Custom(power::system_reset2),
    },
];

pub fn find(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == name)
}

pub fn run_entry(e: &'static Entry, env: &'static Env) -> ! {
    match e.kind {
        Kind::Tests(s) => guestlib::run_and_power_off(s, env),
        Kind::Custom(f) => f(env),
    }
}

/// Displays the known suite names.
pub struct Names;

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in ENTRIES.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(e.name)?;
        }
        Ok(())
    }
}
