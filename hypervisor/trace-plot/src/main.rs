//! `trace-plot`: parkvisor serial log → per-CPU swimlane timeline (SVG, PNG).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use trace_plot::{Options, Timeline, render_svg};

const USAGE: &str = "\
usage: trace-plot [options] LOG [OUT.svg]

Turns a serial log (parkvisor trace lines mixed with any guest output) into an
SVG timeline: one lane per vCPU coloured by power state (OFF / ON_PENDING / ON),
with CPU_ON arrows, fast-stop windows, dropped IPIs, faults, marks, calls
(trace=calls) and system off/reset/panic. Hover an element for its trace line.

  LOG            serial log file, or - for stdin
  OUT.svg        output (default: LOG with its extension replaced by .svg)
  --from SEC     start of the time window (hypervisor seconds)
  --to SEC       end of the time window
  --fast-stop N  window around the N-th fast-stop (0-based) instead
  --cpus N       draw at least N lanes
  --width PX     picture width (default 1200)
  --title TEXT   title (default: the log's file name)
  --png          also write OUT.png with rsvg-convert (librsvg2-bin)
  --quiet        no summary on stderr
";

fn fail(msg: &str) -> ExitCode {
    eprintln!("trace-plot: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut opts = Options::default();
    let mut files = Vec::new();
    let mut png = false;
    let mut quiet = false;
    let mut fast_stop: Option<usize> = None;
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                "--from" => opts.from = Some(parse_f64(&val("--from")?)?),
                "--to" => opts.to = Some(parse_f64(&val("--to")?)?),
                "--cpus" => opts.cpus = Some(parse_num(&val("--cpus")?)?),
                "--width" => opts.width = Some(parse_num(&val("--width")?)? as u32),
                "--title" => opts.title = Some(val("--title")?),
                "--fast-stop" => fast_stop = Some(parse_num(&val("--fast-stop")?)?),
                "--png" => png = true,
                "--quiet" | "-q" => quiet = true,
                s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
                _ => files.push(a.clone()),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return fail(&e);
        }
    }
    let (log_path, out) = match files.as_slice() {
        [log] => (log.clone(), default_out(log)),
        [log, out] => (log.clone(), PathBuf::from(out)),
        _ => return fail(&format!("expected LOG [OUT.svg]\n{USAGE}")),
    };
    let bytes = if log_path == "-" {
        let mut b = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut b) {
            return fail(&format!("reading stdin: {e}"));
        }
        b
    } else {
        match std::fs::read(&log_path) {
            Ok(b) => b,
            Err(e) => return fail(&format!("reading {log_path}: {e}")),
        }
    };
    // Serial logs may hold arbitrary guest bytes.
    let log = String::from_utf8_lossy(&bytes);
    let tl = Timeline::from_log(&log, opts.cpus);
    if tl.lines == 0 {
        return fail(&format!(
            "no parkvisor trace lines ([hv ...] cpuN ...) in {log_path}"
        ));
    }
    if let Some(i) = fast_stop {
        let Some(f) = tl.fast_stops.get(i) else {
            return fail(&format!(
                "there are only {} fast-stops",
                tl.fast_stops.len()
            ));
        };
        let end = f.end.unwrap_or(tl.t_max);
        let margin = ((end - f.begin) * 0.5).max(20e-6);
        opts.from = Some(f.begin - margin);
        opts.to = Some(end + margin);
    }
    if opts.title.is_none() {
        let name = Path::new(&log_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        opts.title = Some(format!(
            "parkvisor trace: {}",
            name.unwrap_or_else(|| "stdin".into())
        ));
    }
    let svg = render_svg(&tl, &opts);
    if let Err(e) = std::fs::write(&out, svg) {
        return fail(&format!("writing {}: {e}", out.display()));
    }
    if !quiet {
        eprint!("{}", tl.summary());
    }
    println!("{}", out.display());
    if png {
        let png_out = out.with_extension("png");
        match Command::new("rsvg-convert")
            .arg("-o")
            .arg(&png_out)
            .arg(&out)
            .status()
        {
            Ok(s) if s.success() => println!("{}", png_out.display()),
            Ok(s) => return fail(&format!("rsvg-convert failed ({s})")),
            Err(_) => {
                return fail(
                    "--png needs rsvg-convert (apt-get install librsvg2-bin); the SVG was written",
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn default_out(log: &str) -> PathBuf {
    let p = Path::new(log);
    if log == "-" {
        PathBuf::from("trace.svg")
    } else if p.extension().is_some_and(|e| e == "svg") {
        // Never overwrite the input.
        PathBuf::from(format!("{log}.plot.svg"))
    } else {
        p.with_extension("svg")
    }
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("not a number: {s}"))
}

fn parse_num(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("not a count: {s}"))
}
