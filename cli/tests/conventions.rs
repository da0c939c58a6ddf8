//! One set of conventions across the commands (docs/cli.md, "Conventions shared by every command"):
//! every option's default in `--help`, the same default data everywhere, the results summary on stdout
//! and nothing on stderr on success, names in files as on the command line, and CSV headers exactly as
//! documented.
use std::path::Path;
use std::process::{Command, Output};

fn nff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(args)
        .output()
        .expect("run nff")
}

fn ok(args: &[&str]) -> Output {
    let o = nff(args);
    assert!(
        o.status.success(),
        "nff {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const COMMANDS: [&str; 6] = ["train", "flow", "sweep", "convex", "data", "verify"];

/// The option blocks of a `--help` text: (long name, whether it takes a value, its whole help text).
fn options(help: &str) -> Vec<(String, bool, String)> {
    let mut blocks: Vec<(String, bool, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') && line.len() - t.len() <= 6 {
            let long = t
                .split_whitespace()
                .find_map(|w| w.trim_end_matches(',').strip_prefix("--"))
                .unwrap_or("")
                .to_string();
            let head = t.split("  ").next().unwrap_or("");
            blocks.push((long, head.contains('<'), t.to_string()));
        } else if let Some(b) = blocks.last_mut() {
            b.2.push(' ');
            b.2.push_str(t);
        }
    }
    blocks
}

/// Options that take a value and show no `[default: …]`.
fn missing_defaults(help: &str) -> Vec<String> {
    options(help)
        .into_iter()
        .filter(|(long, takes, text)| {
            *takes
                && !text.contains("[default:")
                && !nff_cli::defaults::NOT_DEFAULTED.contains(&long.as_str())
        })
        .map(|(long, _, _)| long)
        .collect()
}

#[test]
fn the_help_checker_finds_an_option_without_a_default() {
    let help = "Options:\n      --width <WIDTH>\n          Width m [default: 256]\n      --eta <ETA>\n          Step size\n      --quiet\n          No progress bar\n";
    assert_eq!(missing_defaults(help), vec!["eta".to_string()]);
}

#[test]
fn help_shows_every_default() {
    for cmd in COMMANDS {
        let o = ok(&[cmd, "--help"]);
        let help = String::from_utf8_lossy(&o.stdout).to_string();
        let opts = options(&help);
        assert!(
            opts.iter().any(|(l, _, _)| l == "seed"),
            "nff {cmd} --help lists no --seed:\n{help}"
        );
        let missing = missing_defaults(&help);
        assert!(
            missing.is_empty(),
            "nff {cmd} --help: no [default: …] for --{}",
            missing.join(", --")
        );
    }
    // The defaults shown are the ones used: train's default eta and width are in its summary.
    let o = ok(&["train", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout).to_string();
    let eta = nff_cli::common::fmt_num(nff_cli::defaults::train::ETA);
    assert!(help.contains(&format!("[default: {eta}]")), "{help}");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t");
    ok(&[
        "train",
        "--steps",
        "2",
        "--width",
        "8",
        "--quiet",
        "--out",
        s(&out),
    ]);
    let summary = json(&out.join("summary.json"));
    assert_eq!(
        summary["config"]["eta"].as_f64(),
        Some(nff_cli::defaults::train::ETA)
    );
}

/// N and d of the data each command uses without data options.
#[test]
fn every_command_has_the_same_default_data() {
    use nff_cli::defaults::{D, N};
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| d.path().join(name);
    ok(&["data", "--quiet", "--out", s(&p("data"))]);
    let data = json(&p("data/summary.json"));
    assert_eq!(
        (data["config"]["n"].as_u64(), data["config"]["d"].as_u64()),
        (Some(N as u64), Some(D as u64))
    );
    assert_eq!(data["config"]["data"], nff_cli::defaults::DATA);
    ok(&[
        "train",
        "--steps",
        "1",
        "--width",
        "8",
        "--quiet",
        "--out",
        s(&p("train")),
    ]);
    let train = json(&p("train/summary.json"));
    let model = &train["config"]["model"];
    assert_eq!(
        (model["n"].as_u64(), model["d"].as_u64()),
        (Some(N as u64), Some(D as u64))
    );
    assert_eq!(model["data"], nff_cli::defaults::DATA);
    ok(&[
        "flow",
        "--width",
        "8",
        "--time",
        "0.1",
        "--quiet",
        "--out",
        s(&p("flow")),
    ]);
    records_default_data("flow", &p("flow/summary.json"));
    ok(&[
        "convex",
        "--gaussian",
        "64",
        "--quiet",
        "--out",
        s(&p("convex")),
    ]);
    records_default_data("convex", &p("convex/summary.json"));
    ok(&[
        "sweep",
        "--widths",
        "4",
        "--reference-width",
        "8",
        "--seeds",
        "1",
        "--time",
        "0.1",
        "--quiet",
        "--out",
        s(&p("sweep")),
    ]);
    records_default_data("sweep", &p("sweep/summary.json"));
}

/// `cmd`'s summary.json records the default N and d somewhere (flow, convex and sweep nest them
/// differently).
fn records_default_data(cmd: &str, summary: &std::path::Path) {
    use nff_cli::defaults::{D, N};
    let text = json(summary).to_string();
    assert!(
        text.contains(&format!("\"n\":{N}")) && text.contains(&format!("\"d\":{D}")),
        "{cmd}'s summary.json does not record N = {N}, d = {D}: {text}"
    );
}

/// The documented CSV headers: `- \`nff CMD\` → \`FILE\`: \`HEADER\`` lines of docs/cli.md.
fn documented_csv_headers() -> Vec<(String, String, String)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    doc.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("- `nff ")?;
            let (cmd, rest) = l.split_once("` → `")?;
            let (file, rest) = rest.split_once("`: `")?;
            let header = rest.split('`').next()?;
            Some((cmd.to_string(), file.to_string(), header.to_string()))
        })
        .collect()
}

#[test]
fn csv_headers_are_the_documented_ones() {
    let documented = documented_csv_headers();
    let cmds: Vec<&str> = documented.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(cmds, ["train", "flow", "sweep", "data"], "{documented:?}");
    let d = tempfile::tempdir().unwrap();
    for (cmd, file, header) in &documented {
        let out = d.path().join(cmd);
        let mut args: Vec<&str> = vec![cmd.as_str(), "--quiet", "--out", s(&out)];
        args.extend_from_slice(match cmd.as_str() {
            "train" => &["--width", "8", "--steps", "3"][..],
            "flow" => &["--width", "8", "--time", "0.1"],
            "sweep" => &[
                "--widths",
                "4",
                "--reference-width",
                "8",
                "--seeds",
                "1",
                "--time",
                "0.1",
            ],
            _ => &[],
        });
        ok(&args);
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let first = text.lines().next().unwrap_or("");
        assert_eq!(
            first, header,
            "nff {cmd}: {file}'s header is not the documented one"
        );
        let columns = header.split(',').count();
        for (i, row) in text.lines().enumerate().skip(1) {
            assert_eq!(
                row.split(',').count(),
                columns,
                "nff {cmd}: {file} row {i} has another number of fields than its header: {row}"
            );
        }
    }
    // --lagrangian fills the drift column, under the same header.
    let out = d.path().join("lagrangian");
    ok(&[
        "flow",
        "--width",
        "8",
        "--time",
        "0.1",
        "--lagrangian",
        "--quiet",
        "--out",
        s(&out),
    ]);
    let text = std::fs::read_to_string(out.join("trajectory.csv")).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.rsplit(',')
            .next()
            .is_some_and(|x| x.parse::<f64>().is_ok()),
        "no drift in the last row: {last}"
    );
}

/// Success: a results summary on stdout, nothing on stderr (not a terminal, so no progress bar).
#[test]
fn results_go_to_stdout_and_stderr_stays_empty() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| d.path().join(name);
    let runs: Vec<(Vec<String>, &str)> = vec![
        (vec!["train", "--width", "8", "--steps", "3"], "J = "),
        (vec!["flow", "--width", "8", "--time", "0.1"], "wrote"),
        (
            vec![
                "sweep",
                "--widths",
                "4",
                "--reference-width",
                "8",
                "--seeds",
                "1",
                "--time",
                "0.1",
            ],
            "slopes against m_eff",
        ),
        (vec!["convex", "--gaussian", "64"], "gap"),
        (vec!["data"], "wrote"),
        (
            vec!["verify", "--quick", "--only", "C15", "--seeds", "1"],
            "claims passed",
        ),
    ]
    .into_iter()
    .map(|(a, want)| (a.into_iter().map(String::from).collect(), want))
    .collect();
    for (args, want) in runs {
        let out = p(&args[0]);
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--out", s(&out)]);
        let o = ok(&all);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            stdout.contains(want),
            "nff {}: expected '{want}' on stdout, found:\n{stdout}",
            args[0]
        );
        assert!(
            stderr.is_empty(),
            "nff {}: expected nothing on stderr, found:\n{stderr}",
            args[0]
        );
        // --quiet silences the results summary.
        let quiet_out = p(&format!("{}-quiet", args[0]));
        let mut quiet: Vec<&str> = args.iter().map(String::as_str).collect();
        quiet.extend(["--quiet", "--out", s(&quiet_out)]);
        let o = ok(&quiet);
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "nff {} --quiet",
            args[0]
        );
    }
}

#[test]
fn names_in_summary_json_are_the_command_lines() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t");
    ok(&[
        "train",
        "--arch",
        "resnet",
        "--reg",
        "group",
        "--lambda",
        "0.01",
        "--q",
        "2",
        "--width",
        "8",
        "--steps",
        "2",
        "--quiet",
        "--out",
        s(&out),
    ]);
    let summary = json(&out.join("summary.json"));
    let model = &summary["config"]["model"];
    assert_eq!(model["arch"], "resnet", "{model}");
    assert_eq!(model["regularizer"]["kind"], "group", "{model}");
    assert_eq!(
        model["activation"],
        nff_cli::defaults::ACTIVATION,
        "{model}"
    );
    assert_eq!(model["loss"], nff_cli::defaults::LOSS, "{model}");
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        !text.contains("res-net") && !text.contains("group-l1q"),
        "{text}"
    );
}

/// On a terminal, `verify`'s progress clock keeps running while one claim holds the main thread (a
/// ticker redraws it); the outputs are the same bytes as without a terminal. The terminal is the one
/// `script(1)` provides; without `script` the test says so and checks nothing.
#[test]
fn the_verify_clock_ticks_during_a_long_claim_on_a_terminal() {
    let script = Command::new("script").arg("--version").output();
    if !script.is_ok_and(|o| o.status.success()) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "notice: the progress-clock test skipped: script(1) is not installed"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (tty_out, plain_out) = (d.path().join("tty"), d.path().join("plain"));
    // C2 alone takes several seconds at the quick size on 5 seed pairs.
    let args = "verify --quick --only C2 --threads 1";
    let line = format!(
        "{} {args} --out {}",
        env!("CARGO_BIN_EXE_nff"),
        tty_out.display()
    );
    let o = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let screen = String::from_utf8_lossy(&o.stdout).to_string();
    // The elapsed-time stamps the bar showed: [00:00:00], [00:00:01], …
    let mut stamps: Vec<&str> = screen
        .match_indices("[00:00:")
        .map(|(i, _)| &screen[i..(i + 10).min(screen.len())])
        .collect();
    stamps.sort();
    stamps.dedup();
    let took = json(&tty_out.join("summary.json"))["wall_seconds"]
        .as_f64()
        .unwrap();
    if took >= 4.0 {
        assert!(
            stamps.len() >= 4,
            "the clock showed only {stamps:?} during a {took:.1} s claim:\n{screen}"
        );
    } else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "notice: the progress clock was not checked: C2 took only {took:.1} s (needs ≥ 4 s)"
        );
    }
    let mut plain: Vec<&str> = args.split(' ').collect();
    plain.extend(["--out", s(&plain_out)]);
    let o = ok(&plain);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for file in ["claims.json", "report.md", "report.html", "C2.svg"] {
        assert_eq!(
            std::fs::read(tty_out.join(file)).unwrap(),
            std::fs::read(plain_out.join(file)).unwrap(),
            "{file} differs between a run on a terminal and one without"
        );
    }
}
