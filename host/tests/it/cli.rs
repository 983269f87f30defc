//! The `kedastral` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;
use crate::support::RunWithin;

pub(crate) fn kedastral(args: &[&str]) -> Output {
    support::warm_model_cache();
    Command::new(env!("CARGO_BIN_EXE_kedastral"))
        .args(args)
        .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir())
        .run_within(std::time::Duration::from_secs(120))
        .expect("running kedastral")
}

fn stdout_of(args: &[&str]) -> String {
    let out = kedastral(args);
    assert!(
        out.status.success(),
        "kedastral {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The last `points` rows of the bundled trace, as a CSV file.
fn trace_tail(dir: &Path, points: usize) -> PathBuf {
    let text = std::fs::read_to_string(support::workspace().join("examples/data/nasa_http_1m.csv"))
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let path = dir.join("tail.csv");
    let mut out = String::from("timestamp,value\n");
    for line in &lines[lines.len() - points..] {
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn forecast_prints_json_with_values_and_bands_for_each_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4_000);
    let example = support::fixture("kedastral-example-window");
    for model in ["baseline", "arima", "mstl", example.to_str().unwrap()] {
        let out = stdout_of(&[
            "forecast",
            "--model",
            model,
            "--input",
            input.to_str().unwrap(),
            "--horizon",
            "30",
            "--quantiles",
            "0.1,0.9",
        ]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["values"].as_array().unwrap().len(), 30, "{model}");
        assert_eq!(json["stepSeconds"], 60);
        // The input's last row is 1995-07-28T17:31:00Z; values[0] is one step later.
        assert_eq!(json["start"], "1995-07-28T17:32:00Z", "{model}");
        let bands = json["quantiles"].as_array().unwrap();
        assert_eq!(bands.len(), 2);
        assert_eq!(bands[0]["level"], 0.1);
        assert_eq!(bands[1]["values"].as_array().unwrap().len(), 30);
    }
}

#[test]
fn auto_serves_the_combination_and_shows_the_weights_with_calibrated_bands() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4_000);
    let out = stdout_of(&[
        "forecast",
        "--model",
        "auto",
        "--input",
        input.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["model"]["name"], "auto");
    let selection = &json["selection"];
    assert_eq!(selection["calibrated"], true, "{selection}");
    // Auto's 96 shadow origins, every half horizon, fit in the input; the
    // newest two are less than a horizon old, so not yet wholly judged.
    assert_eq!(selection["judgedOrigins"], 94, "{selection}");
    assert_eq!(selection["chosen"], "combined");
    let candidates = selection["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 6);
    let (real, combined) = candidates.split_at(5);
    // Per bucket of leads the weights sum to one; the leader weighs most.
    let buckets = selection["leadBuckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 4, "{selection}");
    for b in 0..buckets.len() {
        let sum: f64 = real
            .iter()
            .map(|c| c["leadWeights"][b].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-9, "{selection}");
    }
    let weight = |c: &serde_json::Value| c["weight"].as_f64().unwrap();
    let heaviest = real
        .iter()
        .max_by(|a, b| weight(a).total_cmp(&weight(b)))
        .unwrap();
    assert_eq!(selection["leader"], heaviest["name"], "{selection}");
    // The combination, weighed out of sample, is no worse than the worst
    // candidate and no better than a perfect one.
    let mae = |c: &serde_json::Value| c["mae"].as_f64().unwrap();
    let worst = real.iter().map(mae).fold(0.0, f64::max);
    assert!((0.0..worst).contains(&mae(&combined[0])), "{selection}");

    // The single model's bands are calibrated too, unless asked not to.
    let bands_of = |extra: &[&str]| {
        let mut args = vec!["forecast", "--input", input.to_str().unwrap()];
        args.extend_from_slice(extra);
        let json: serde_json::Value = serde_json::from_str(&stdout_of(&args)).unwrap();
        (
            json["selection"]["calibrated"].clone(),
            json["quantiles"].clone(),
        )
    };
    let (calibrated, bands) = bands_of(&[]);
    let (raw, own_bands) = bands_of(&["--no-calibration"]);
    assert_eq!((calibrated, raw), (true.into(), false.into()));
    assert_ne!(bands, own_bands);

    let out = kedastral(&[
        "forecast",
        "--model",
        "auto",
        "--param",
        "season=1d",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("with --model auto every candidate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn forecast_prints_csv_and_passes_params() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 500);
    let example = support::fixture("kedastral-example-window");
    let out = stdout_of(&[
        "forecast",
        "--model",
        example.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "3",
        "--format",
        "csv",
        "--quantiles",
        "0.5",
        "--param",
        "window=1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "timestamp,value,q0.5,sizing_load");
    assert_eq!(lines.len(), 4);
    // window=1: the forecast is the last observed value.
    let last = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], "1995-07-28T17:32:00Z");
    assert_eq!(first[1].parse::<f64>().unwrap(), last);
}

#[test]
fn the_seasonal_naive_model_scores_as_the_backtests_own_seasonal_naive() {
    // Four days of minutes: the origins have two days or more behind them,
    // so both read the value a day before each step.
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4 * 1440);
    let out = stdout_of(&[
        "backtest",
        "--model",
        "seasonal-naive",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "30",
        "--origins",
        "40",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["model"]["name"], "seasonal-naive");
    assert_eq!(json["failedOrigins"], 0);
    for key in ["mae", "rmse", "mase"] {
        let (model, rule) = (
            json["accuracy"][key].as_f64().unwrap(),
            json["seasonalNaive"][key].as_f64().unwrap(),
        );
        assert!(
            (model - rule).abs() <= 1e-9 * rule,
            "{key}: {model} against {rule}"
        );
    }
}

#[test]
fn backtest_reports_accuracy_coverage_and_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4 * 1440);
    let out = stdout_of(&[
        "backtest",
        "--model",
        "baseline",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "30",
        "--origins",
        "40",
        "--target-per-pod",
        "2",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["model"]["name"], "baseline");
    assert_eq!(json["origins"], 40);
    assert_eq!(json["failedOrigins"], 0);
    assert_eq!(json["seasonSteps"], 1440);
    assert_eq!(json["accuracy"]["points"], 40 * 30);
    for key in ["mae", "rmse", "mase"] {
        assert!(json["accuracy"][key].as_f64().unwrap() > 0.0, "{key}");
        assert!(json["seasonalNaive"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert_eq!(json["coverage"].as_array().unwrap().len(), 2);
    let capacity = &json["capacity"];
    assert_eq!(capacity["targetPerPod"], 2.0);
    // A decision a minute for 40 origins of 5; the first 3 + 5 minutes
    // warm up the pod start-up and the scale-down window.
    assert_eq!(capacity["steps"], 40 * 5 - 8);
    assert_eq!(capacity["podStartDelaySteps"], 3);
    assert_eq!(capacity["stabilizationSteps"], 5);
    assert_eq!(capacity["reactiveFloor"], true);
    assert_eq!(capacity["sizing"]["rule"], "objective");
    assert_eq!(capacity["sizing"]["targetShortfall"], 0.03);
    for policy in ["predictive", "reactive"] {
        let share = capacity[policy]["underProvisionedShare"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share));
        assert!(capacity[policy]["podTimeOverOracle"].as_f64().is_some());
        assert!(capacity[policy]["scalingChangesPerDay"].as_f64().is_some());
    }
    // The trade-off: every objective, then every fixed level; a higher
    // level is never short more often than a lower one on the same forecasts.
    let curve = capacity["tradeoff"].as_array().unwrap();
    assert_eq!(curve.len(), 7 + 6);
    let levels: Vec<f64> = curve
        .iter()
        .filter(|p| p["level"].is_number())
        .map(|p| p["underProvisionedShare"].as_f64().unwrap())
        .collect();
    assert!(levels.windows(2).all(|w| w[1] <= w[0]), "{levels:?}");

    let text = stdout_of(&[
        "backtest",
        "--model",
        "arima",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "10",
        "--origins",
        "10",
    ]);
    assert!(text.contains("seasonal naive"), "{text}");
    assert!(text.contains("reactive (last value)"), "{text}");
    assert!(text.contains("trade-off"), "{text}");
    assert!(text.contains("objective 3%"), "{text}");
}

#[test]
fn forecast_says_what_it_would_size_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4 * 1440);
    let input = input.to_str().unwrap();
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["forecast", "--input", input, "--horizon", "30"];
        args.extend(extra);
        serde_json::from_str(&stdout_of(&args)).unwrap()
    };
    let last = std::fs::read_to_string(input)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.split(',').nth(1).map(|v| v.parse::<f64>().unwrap()))
        .unwrap();
    // Four days of history are enough evidence: a level is chosen for the
    // default objective, with the shortfall it would have left lately.
    let out = json(&[]);
    let sizing = &out["sizing"];
    assert_eq!(sizing["rule"], "objective", "{sizing}");
    assert_eq!(sizing["targetShortfall"], 0.03);
    assert_eq!(sizing["reactiveFloor"], true);
    assert_eq!(sizing["podStartDelaySeconds"], 180);
    let level = sizing["level"].as_f64().unwrap();
    assert!(kedastral::sizing::LEVELS.contains(&level), "{level}");
    assert!(sizing["recentShortfall"].as_f64().unwrap() <= 0.03);
    assert!(sizing["points"].as_u64().unwrap() > 100);
    let loads: Vec<f64> = serde_json::from_value(sizing["loads"].clone()).unwrap();
    assert_eq!(loads.len(), 30);
    // The reactive floor: never below the last observed value.
    assert!(loads.iter().all(|&l| l >= last), "{loads:?} vs {last}");
    // The level is chosen on whole pods, by default of a tenth of the
    // history's 95th percentile, as `backtest` assumes.
    let mut values: Vec<f64> = std::fs::read_to_string(input)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .collect();
    values.sort_by(f64::total_cmp);
    let rank = 0.95 * (values.len() - 1) as f64;
    let (below, above) = (values[rank.floor() as usize], values[rank.ceil() as usize]);
    let p95 = below + (above - below) * rank.fract();
    let per_pod = sizing["targetPerPod"].as_f64().unwrap();
    assert!(
        (per_pod - p95 / 10.0).abs() <= 1e-9 * p95,
        "{per_pod} vs {p95}"
    );
    // Pods so large that one serves any load are never short: the lowest
    // level meets the objective.
    let one_pod = json(&["--target-per-pod", "1e12"]);
    assert_eq!(one_pod["sizing"]["targetPerPod"], 1e12);
    assert_eq!(one_pod["sizing"]["level"], 0.5, "{}", one_pod["sizing"]);
    assert_eq!(one_pod["sizing"]["recentShortfall"], 0.0);
    let out = kedastral(&["forecast", "--input", input, "--target-per-pod", "0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--target-per-pod 0 must be a positive number")
    );
    // A stricter objective sizes on a level at least as high.
    let strict = json(&["--target-shortfall", "0.5%"]);
    assert!(strict["sizing"]["level"].as_f64().unwrap() >= level);

    // A fixed level sizes on that band of the forecast, floored.
    let fixed = json(&["--quantile-level", "0.9", "--reactive-floor", "false"]);
    assert_eq!(fixed["sizing"]["rule"], "quantile-level");
    let band = fixed["quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["level"] == 0.9)
        .unwrap();
    assert_eq!(fixed["sizing"]["loads"], band["values"]);
    // Headroom: the point forecast times it.
    let headroom = json(&["--headroom", "1.5", "--reactive-floor", "false"]);
    let values: Vec<f64> = serde_json::from_value(headroom["values"].clone()).unwrap();
    let loads: Vec<f64> = serde_json::from_value(headroom["sizing"]["loads"].clone()).unwrap();
    for (v, l) in values.iter().zip(&loads) {
        assert!((v * 1.5 - l).abs() < 1e-9);
    }
    // A share that reads as neither a percentage nor a fraction is refused.
    let out = kedastral(&["forecast", "--input", input, "--target-shortfall", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2%"));
}

#[test]
fn model_inspect_prints_what_a_component_says() {
    let example = support::fixture("kedastral-example-window");
    let out = stdout_of(&[
        "model",
        "inspect",
        example.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["name"], "recent-window");
    assert_eq!(json["minHistory"], 1);
    assert_eq!(json["params"][0]["name"], "window");
    assert_eq!(json["params"][0]["default"], "60");
    let text = stdout_of(&["model", "inspect", "arima"]);
    assert!(text.contains("name:") && text.contains("arima"), "{text}");
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,lots\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "timestamp,value\n").unwrap();
    let good = trace_tail(dir.path(), 100);
    let (bad, empty, good) = (
        bad.to_str().unwrap(),
        empty.to_str().unwrap(),
        good.to_str().unwrap(),
    );

    // (extra arguments to `forecast`, exit code, what stderr must say)
    let cases: [(&[&str], i32, &str); 6] = [
        (&["--input", bad], 1, "line 3: value `lots` is not a number"),
        (&["--input", empty], 1, "no data rows"),
        (
            &["--input", good, "--model", "prophet"],
            1,
            "unknown built-in model `prophet`",
        ),
        (&["--input", good, "--param", "alpha=high"], 1, "alpha"),
        // Flags that do not parse are refused by clap before anything runs.
        (&["--input", good, "--horizon", "0"], 2, "--horizon"),
        (
            &["--input", good, "--model-timeout", "soon"],
            2,
            "--model-timeout",
        ),
    ];
    for (args, code, message) in cases {
        let out = kedastral(&[&["forecast"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn without_input_the_bundled_trace_is_used() {
    // The README's main-job command is `kedastral backtest` with no flags;
    // fewer origins keep the test short.
    let text = stdout_of(&["backtest", "--origins", "20"]);
    assert!(
        text.starts_with("model baseline "),
        "the default model is baseline: {text}"
    );
    assert!(
        text.contains("20 origins (0 failed), horizon 30 x 60s"),
        "{text}"
    );
    assert!(text.contains("season 1440 steps"), "{text}");

    let out = stdout_of(&["forecast", "--horizon", "3"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["start"], "1995-07-28T17:32:00Z");
    assert_eq!(json["values"].as_array().unwrap().len(), 3);
}

/// `kedastral forecaster` with `args` must refuse to start, saying `needle`.
fn refuses(args: &[&str], needle: &str) {
    let mut all = vec!["forecaster"];
    all.extend_from_slice(args);
    if !args.contains(&"--listen") {
        all.extend(["--listen", "127.0.0.1:0"]);
    }
    let out = kedastral(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} started");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn the_forecaster_refuses_nonsense_naming_it() {
    let w = [
        "--workload",
        "w",
        "--prom-query",
        "up",
        "--target-per-pod",
        "10",
    ];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&str> = w.to_vec();
        v.extend_from_slice(extra);
        v
    };
    refuses(
        &with(&["--step", "0s"]),
        "`w`: step: must be more than zero",
    );
    refuses(
        &with(&["--step", "1h", "--horizon", "30m"]),
        "step: 1h is longer than the horizon",
    );
    refuses(&with(&["--step", "soon"]), "step: `soon`");
    refuses(
        &with(&["--min", "5", "--max", "3"]),
        "min replicas (5) is above max replicas (3)",
    );
    refuses(&with(&["--headroom", "0.5"]), "headroom");
    refuses(
        &with(&["--param", "nope=1"]),
        "param `nope`: model `baseline` has no such parameter",
    );
    refuses(&with(&["--model", "no-such-model"]), "no-such-model");
    refuses(
        &with(&["--prom-url", "not a url"]),
        "--prom-url `not a url`",
    );
    refuses(
        &with(&["--listen", "127.0.0.1:notaport"]),
        "--listen `127.0.0.1:notaport`",
    );
    refuses(&with(&["--storage", "etcd"]), "etcd");
    refuses(&with(&["--redis-ttl", "0s"]), "--redis-ttl");
    refuses(
        &["--prom-query", "up", "--target-per-pod", "1"],
        "--workload is required",
    );
    refuses(
        &["--workload", "w", "--target-per-pod", "1"],
        "--prom-query is required",
    );
    refuses(
        &["--workload", "w", "--prom-query", "up"],
        "--target-per-pod is required",
    );
}

#[test]
fn the_forecaster_refuses_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workloads.toml");
    let file = path.to_str().unwrap();
    std::fs::write(
        &path,
        "[[workload]]\nname = \"w\"\nprom-query = \"up\"\ntarget-per-pod = 10\nmax-replicas = 3\n",
    )
    .unwrap();
    refuses(&["--config", file], "max-replicas");
    std::fs::write(
        &path,
        "[[workload]]\nname = \"w\"\nprom-query = \"up\"\ntarget-per-pod = 10\n",
    )
    .unwrap();
    refuses(&["--config", file, "--workload", "x"], "remove --workload");
    refuses(&["--config", "/no/such/file.toml"], "/no/such/file.toml");
}

/// The README's main job: `kedastral run` with no flags but free ports logs
/// replica decisions within seconds, then stops cleanly on SIGTERM.
#[test]
fn kedastral_run_logs_decisions_within_seconds() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    // Port 0: the process binds free ports itself.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kedastral"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines arrive through a channel, so every wait has a limit.
    let (send, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let limit = Duration::from_secs(60);
    let mut seen = Vec::new();
    let decision = loop {
        let left = limit.saturating_sub(started.elapsed());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains("decision") && l.contains("replicas_for_keda=") => break Some(l),
            Ok(l) => seen.push(l),
            Err(_) => break None,
        }
    };
    let elapsed = started.elapsed();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(30)) {
        rest.push(l);
    }
    let status = child.wait().unwrap();
    let decision =
        decision.unwrap_or_else(|| panic!("no decision line within {limit:?}: {seen:?}"));
    assert!(decision.contains("workload=nasa"), "{decision}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(status.success(), "{status}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn forecaster_check_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workloads.toml");
    std::fs::write(
        &path,
        "[[workload]]\nname = \"w\"\nprom-query = \"up\"\ntarget-per-pod = 10\nmodel = \"arima\"\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let out = stdout_of(&["forecaster", "--config", file, "--check"]);
    assert!(
        out.contains("configuration is valid: 1 workload(s)"),
        "{out}"
    );
    std::fs::write(
        &path,
        "[[workload]]\nname = \"w\"\nprom-query = \"up\"\ntarget-per-pod = 10\nparams = { nope = \"1\" }\n",
    )
    .unwrap();
    refuses(&["--config", file, "--check"], "param `nope`");
}

#[test]
fn backtest_over_a_folder_judges_each_trace_and_all_together() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(support::workspace().join("examples/data/nasa_http_1m.csv"))
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Two stretches of the trace, four days each, as two "traces".
    for (name, end) in [("early.csv", 6_000), ("late.csv", lines.len())] {
        let mut out = String::from("timestamp,value\n");
        for line in &lines[end - 5_760..end] {
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(dir.path().join(name), out).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a trace").unwrap();
    let folder = dir.path().to_str().unwrap();
    let out = stdout_of(&[
        "backtest",
        "--input",
        folder,
        "--origins",
        "20",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let traces = report["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[0]["trace"], "early.csv");
    let mase = |i: usize| traces[i]["accuracy"]["mase"].as_f64().unwrap();
    let geo = report["aggregate"]["geometricMeanMase"].as_f64().unwrap();
    assert!(((mase(0) * mase(1)).sqrt() - geo).abs() < 1e-9, "{report}");
    assert_eq!(report["aggregate"]["traces"], 2);
    assert!(
        report["aggregate"]["geometricMeanMaseRatio"]
            .as_f64()
            .is_some()
    );
    let text = stdout_of(&["backtest", "--input", folder, "--origins", "20"]);
    assert!(text.contains("aggregate: geometric mean MASE"), "{text}");
    assert!(text.contains("late.csv"), "{text}");
}

/// The hostile fixture through `forecast` or `backtest` with `behaviour`.
fn hostile(command: &str, input: &Path, behaviour: &str, extra: &[&str]) -> (Output, f64) {
    let model = support::fixture("kedastral-test-hostile");
    let param = format!("behaviour={behaviour}");
    let mut args = vec![
        command,
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--param",
        &param,
    ];
    args.extend_from_slice(extra);
    let started = std::time::Instant::now();
    let out = kedastral(&args);
    (out, started.elapsed().as_secs_f64())
}

#[test]
fn a_model_that_times_out_ends_forecast_and_backtest_within_about_one_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 4_000);
    // Alone, the command starts and loads the model in well under a second.
    let (ok, alone) = hostile("forecast", &input, "ok", &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for command in ["forecast", "backtest"] {
        // Over a hundred shadow origins (and for backtest 1 000 origins)
        // would each cost the deadline if the model were called again.
        let (out, took) = hostile(command, &input, "spin", &["--model-timeout", "500ms"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains("ran past its deadline of 500ms"),
            "{command}: {stderr}"
        );
        assert!(
            took < alone + 2.5,
            "{command} took {took:.1} s, {alone:.1} s without the fault"
        );
    }
}

#[test]
fn a_tens_of_megabytes_guest_error_prints_a_few_kilobytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 500);
    let (out, _) = hostile("forecast", &input, "loud-error", &["--no-calibration"]);
    assert!(!out.status.success());
    let printed = out.stdout.len() + out.stderr.len();
    assert!(printed < 16 * 1024, "{printed} bytes printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("more bytes]"),
        "{}",
        &stderr[stderr.len().saturating_sub(300)..]
    );
    assert!(!stderr.contains('\u{1b}'));
}

#[test]
fn an_absurd_forecast_is_refused_as_implausible() {
    let dir = tempfile::tempdir().unwrap();
    let input = trace_tail(dir.path(), 500);
    let (out, _) = hostile("forecast", &input, "absurd", &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("implausible forecast"), "{stderr}");
    assert!(stderr.contains("1e300"), "{stderr}");
    // A user who means it can raise the ratio.
    let (out, _) = hostile(
        "forecast",
        &input,
        "absurd",
        &["--max-forecast-ratio", "1e305"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn auto_takes_more_candidates_and_judges_them_beside_its_own() {
    let window = support::fixture("kedastral-example-window");
    let window = window.to_str().unwrap();
    let out = stdout_of(&[
        "forecast",
        "--model",
        "auto",
        "--candidate=-fracast",
        "--candidate=-seasonal-naive",
        "--candidate",
        window,
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["model"]["name"], "auto");
    let names: Vec<&str> = json["selection"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["baseline", "arima", "mstl", "recent-window", "combined"]
    );
    // Every candidate was scored on the shadow origins and weighed.
    for candidate in json["selection"]["candidates"].as_array().unwrap() {
        assert!(candidate["mae"].as_f64().is_some(), "{candidate}");
    }
    let weights: f64 = json["selection"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["weight"].as_f64())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9, "{weights}");
}

#[test]
fn extra_candidates_are_for_auto_and_each_once() {
    for (args, want) in [
        (
            &["--model", "baseline", "--candidate", "mstl"][..],
            "to model `auto` only",
        ),
        (
            &["--model", "auto", "--candidate", "mstl"][..],
            "given twice",
        ),
        (
            &["--model", "auto", "--candidate=-prophet"][..],
            "leaves out a built-in candidate, but auto's are baseline, arima",
        ),
        (
            &[
                "--model",
                "auto",
                "--candidate=-baseline",
                "--candidate=-arima",
                "--candidate=-mstl",
                "--candidate=-fracast",
                "--candidate=-seasonal-naive",
            ][..],
            "every candidate is left out",
        ),
    ] {
        let out = kedastral(&[&["forecast"], args].concat());
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
