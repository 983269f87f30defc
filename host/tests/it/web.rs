//! The web view and the backtest report in a real browser: headless
//! Chromium loads the pages of a running `kedastral run` and a report file,
//! prints the DOM it built and takes screenshots. The tests read the charts'
//! series and points from that DOM, follow the links, check that markup in
//! a metric's name and in a model's error is shown as text, and that the
//! screenshots are not blank.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::services::{Kedastral, eventually, get};
use crate::support;

/// A headless Chromium.
struct Browser {
    program: PathBuf,
}

/// How long one page may take to load and print.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

impl Browser {
    /// `KEDASTRAL_BROWSER`, else the first of Debian's and Ubuntu's names
    /// on the PATH. scripts/test installs Debian's `chromium`.
    fn find() -> Self {
        if let Some(program) = std::env::var_os("KEDASTRAL_BROWSER") {
            return Self {
                program: program.into(),
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in std::env::split_paths(&path) {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Self { program: candidate };
                }
            }
        }
        panic!(
            "no Chromium on the PATH (chromium, chromium-browser or google-chrome; or set \
             KEDASTRAL_BROWSER): scripts/test installs Debian's chromium"
        );
    }

    /// Runs the browser on `url` with `args`, in a profile of its own so
    /// tests can run it at once; its standard output.
    async fn run(&self, url: &str, args: &[&str]) -> Vec<u8> {
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new(&self.program);
        command
            .args([
                "--headless",
                // Tests run as root in containers, where the sandbox cannot
                // start; the pages are this test's own.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url)
            .current_dir(profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = tokio::time::timeout(BROWSER_LIMIT, command.output())
            .await
            .unwrap_or_else(|_| panic!("Chromium did not finish with {url} in {BROWSER_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        assert!(
            output.status.success(),
            "Chromium on {url}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// The DOM the browser built from `url`, serialised.
    async fn dom(&self, url: &str) -> String {
        let out = self.run(url, &["--dump-dom"]).await;
        let dom = String::from_utf8(out).expect("the DOM is UTF-8");
        assert!(dom.contains("<html"), "no page at {url}: {dom}");
        dom
    }

    /// A screenshot of `url` at `width` x `height`, decoded.
    async fn screenshot(&self, url: &str, width: u32, height: u32) -> Picture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shot.png");
        self.run(
            url,
            &[
                &format!("--screenshot={}", file.display()),
                &format!("--window-size={width},{height}"),
            ],
        )
        .await;
        Picture::read(&file)
    }
}

/// Grey levels of a screenshot.
struct Picture {
    grey: Vec<f64>,
}

impl Picture {
    fn read(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("the screenshot"),
        ));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        let channels = info.color_type.samples();
        let grey = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| {
                let rgb = &p[..3.min(p.len())];
                rgb.iter().map(|&c| f64::from(c)).sum::<f64>() / rgb.len() as f64
            })
            .collect();
        Self { grey }
    }

    fn variance(&self) -> f64 {
        let n = self.grey.len() as f64;
        let mean = self.grey.iter().sum::<f64>() / n;
        self.grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n
    }

    /// The share of pixels darker than the page's white.
    fn inked(&self) -> f64 {
        self.grey.iter().filter(|&&g| g < 200.0).count() as f64 / self.grey.len() as f64
    }

    /// Not blank: varied, and with ink on it (text, lines, charts).
    fn assert_drawn(&self, what: &str) {
        let (v, ink) = (self.variance(), self.inked());
        assert!(
            v > 200.0 && ink > 0.01,
            "{what} looks blank: grey variance {v:.1}, ink {ink:.4}"
        );
    }
}

/// One chart in the DOM: its series, by name, as (points drawn, finite
/// points given, vertices in the path's data).
struct ChartSeen {
    series: Vec<(String, usize, usize, usize)>,
}

impl ChartSeen {
    fn series(&self, name: &str) -> (usize, usize, usize) {
        self.series
            .iter()
            .find(|s| s.0 == name)
            .map(|s| (s.1, s.2, s.3))
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.series.iter().map(|s| s.0.as_str()).collect();
                panic!("no series {name} among {names:?}")
            })
    }
}

/// The value of `name="..."` in one tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The chart with `data-chart="id"`.
fn chart(dom: &str, id: &str) -> ChartSeen {
    let key = format!("data-chart=\"{id}\"");
    let start = dom.find(&key).unwrap_or_else(|| panic!("no chart {id}"));
    let end = start + dom[start..].find("</figure>").expect("the chart ends");
    let figure = &dom[start..end];
    let series = figure
        .match_indices("<path ")
        .map(|(at, _)| {
            let tag = &figure[at..at + figure[at..].find('>').unwrap()];
            let number = |n: &str| attr(tag, n).and_then(|v| v.parse().ok()).unwrap_or(0);
            let vertices = attr(tag, "d").map_or(0, |d| d.matches(['M', 'L', 'H']).count());
            (
                attr(tag, "data-series").unwrap_or_default().to_owned(),
                number("data-points"),
                number("data-source"),
                vertices,
            )
        })
        .collect();
    ChartSeen { series }
}

/// Every `href` in the DOM, as written.
fn links(dom: &str) -> Vec<String> {
    dom.match_indices("<a ")
        .filter_map(|(at, _)| {
            let tag = &dom[at..at + dom[at..].find('>')?];
            attr(tag, "href").map(|h| h.replace("&amp;", "&"))
        })
        .collect()
}

/// The visible text of the first `<h1>`.
fn heading(dom: &str) -> &str {
    let start = dom.find("<h1>").expect("a heading") + 4;
    &dom[start..start + dom[start..].find("</h1>").unwrap()]
}

/// What a page shows when markup was escaped: the text, never an element.
fn assert_inert(dom: &str, page: &str) {
    assert!(
        !dom.contains("<script"),
        "{page} has a script element:\n{dom}"
    );
    assert!(
        !dom.contains("<img"),
        "{page} has an injected image:\n{dom}"
    );
}

const METRIC: &str = "<script>alert(1)</script>";
const BEHAVIOUR: &str = "<script>alert(2)</script><img src=x onerror=alert(3)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_of_a_running_forecaster_show_every_workload_and_why_it_scaled() {
    let browser = Browser::find();
    let dir = tempfile::tempdir().unwrap();
    let hostile = support::fixture("kedastral-test-hostile");
    // A workload whose metric name is markup, on auto with two cheap
    // candidates, and one whose model fails with markup in its message.
    let config = format!(
        "[[workload]]\nname = \"shop.web\"\nmetric = \"{METRIC}\"\nprom-query = \"replay\"\n\
         target-per-pod = 0.2\nmodel = \"auto\"\ncandidates = [\"-fracast\", \"-arima\", \"-mstl\"]\n\n\
         [[workload]]\nname = \"broken\"\nprom-query = \"replay\"\ntarget-per-pod = 0.2\n\
         model = '{}'\nparams = {{ behaviour = \"{}\" }}\n",
        hostile.display(),
        BEHAVIOUR.replace('"', "\\\""),
    );
    let path = dir.path().join("workloads.toml");
    std::fs::write(&path, &config).unwrap();
    let workloads = kedastral::config::parse_file(&config).unwrap();
    let run = Kedastral::start_on("run", 0, &["--config", path.to_str().unwrap()]).await;
    let forecast = run.forecast("shop.web").await;
    let broken = eventually(
        "the broken workload's failure",
        Duration::from_secs(30),
        || async {
            let (_, body) = get(&run.url("/workloads")).await?;
            let list = body["workloads"].as_array()?.clone();
            list.into_iter()
                .find(|w| w["workload"] == "broken" && w["lastError"].is_object())
        },
    )
    .await;
    // Forecasts made a lead time ago have met what arrived.
    eventually(
        "shop.web's forecasts judged at the lead time",
        Duration::from_secs(30),
        || async {
            let (_, body) = get(&run.url("/forecast/current?workload=shop.web")).await?;
            (body["liveError"]["comparisons"].as_u64()? >= 2).then_some(())
        },
    )
    .await;
    let message = broken["lastError"]["message"].as_str().unwrap();
    assert!(message.contains("<script>alert(2)"), "{message}");

    // The overview: a row per workload, each linking to its page.
    let base = run.url("/");
    let overview = browser.dom(&base).await;
    assert_inert(&overview, "the overview");
    for name in ["shop.web", "broken"] {
        assert!(
            overview.contains(&format!("data-workload=\"{name}\"")),
            "no row for {name}:\n{overview}"
        );
    }
    assert!(
        overview.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{overview}"
    );
    assert!(
        overview.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{overview}"
    );
    assert!(overview.contains("data-state=\"fresh\""), "{overview}");
    let base_url = url::Url::parse(&base).unwrap();
    let pages: Vec<String> = links(&overview)
        .into_iter()
        .filter(|h| h.starts_with("workload?"))
        .collect();
    assert_eq!(pages, ["workload?name=broken", "workload?name=shop.web"]);

    // The workload page, reached by its link.
    let shop = base_url.join(&pages[1]).unwrap();
    let page = browser.dom(shop.as_str()).await;
    assert_inert(&page, "shop.web's page");
    assert_eq!(heading(&page), "shop.web");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("KEDA is told"), "the decision in words");
    let horizon = forecast["horizon"].as_u64().unwrap() as usize;
    let ahead = chart(&page, "ahead");
    let (drawn, given, vertices) = ahead.series("forecast");
    assert_eq!((drawn, given, vertices), (horizon, horizon, horizon));
    assert_eq!(ahead.series("band").1, horizon);
    assert_eq!(ahead.series("sizing-load").1, horizon);
    assert!(
        ahead.series("actual").1 >= 2 * horizon,
        "the recent history"
    );
    let (drawn, given, _) = chart(&page, "replicas-ahead").series("desired");
    assert_eq!((drawn, given), (horizon, horizon));
    let history = chart(&page, "history").series("history");
    let window = workloads[0].window_points();
    assert!(
        history.1 <= window && history.1 * 10 >= window * 9,
        "{} of {window} points held",
        history.1
    );
    assert!(
        history.0 <= 2 * 900,
        "a week is thinned: {} drawn",
        history.0
    );
    assert_eq!(
        history.0, history.2,
        "data-points counts the path's vertices"
    );
    let lead = chart(&page, "at-lead");
    assert!(
        lead.series("lead-forecast").1 >= 1,
        "a forecast met its lead time"
    );
    assert!(lead.series("actual").1 >= 1);
    assert!(chart(&page, "replicas-past").series("told").1 >= 1);
    for candidate in ["baseline", "seasonal-naive"] {
        assert!(
            page.contains(&format!("data-candidate=\"{candidate}\"")),
            "{candidate} in the candidates' table"
        );
    }
    // The link back leads to the overview.
    assert!(links(&page).contains(&"./".to_owned()));
    assert_eq!(shop.join("./").unwrap(), base_url);

    // The failing workload's page shows its guest's message as text.
    let broken_page = browser
        .dom(base_url.join(&pages[0]).unwrap().as_str())
        .await;
    assert_inert(&broken_page, "broken's page");
    assert_eq!(heading(&broken_page), "broken");
    assert!(
        broken_page.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "{broken_page}"
    );
    assert!(broken_page.contains("id=\"failures\""));

    // An unknown workload is a page that says so, escaped too.
    let (status, body) = get(&run.url("/workload?name=%3Cb%3Enope")).await.unwrap();
    assert_eq!(status, 404);
    assert!(body.as_str().unwrap().contains("&lt;b&gt;nope"), "{body}");

    // What it looks like: neither page is blank.
    browser
        .screenshot(&base, 1280, 600)
        .await
        .assert_drawn("the overview");
    browser
        .screenshot(shop.as_str(), 1280, 2400)
        .await
        .assert_drawn("shop.web's page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_inert_and_not_cached() {
    let run = Kedastral::start_on("run", 0, &[]).await;
    run.forecast("nasa").await;
    let response = reqwest::get(run.url("/workload?name=nasa")).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(headers["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("<meta http-equiv=\"refresh\""),
        "refreshes itself"
    );
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "fetches nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_report_is_one_file_with_its_charts() {
    let browser = Browser::find();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let common = ["backtest", "--origins", "120", "--horizon", "30"];
    let kedastral = |extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kedastral"));
        c.args(common)
            .args(extra)
            .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir());
        c
    };
    support::warm_model_cache();
    let out = kedastral(&["--report", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = kedastral(&["--format", "json"]).output().unwrap();
    assert!(json.status.success());
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained: fetches nothing"
    );

    let url = url::Url::from_file_path(&report).unwrap();
    let dom = browser.dom(url.as_str()).await;
    assert_inert(&dom, "the report");
    for k in 1..=4 {
        let origin = chart(&dom, &format!("origin-{k}"));
        assert_eq!(origin.series("forecast").0, 30, "origin {k}'s forecast");
        assert_eq!(origin.series("band").1, 30);
        assert!(origin.series("actual").1 > 30, "history before origin {k}");
    }
    let capacity = chart(&dom, "capacity");
    let steps = json["capacity"]["steps"].as_u64().unwrap() as usize;
    assert_eq!(capacity.series("load").1, steps, "every step judged");
    assert_eq!(capacity.series("predictive").1, steps);
    assert_eq!(capacity.series("reactive").1, steps);
    let tradeoff = chart(&dom, "tradeoff");
    let points = json["capacity"]["tradeoff"].as_array().unwrap();
    let objectives = points
        .iter()
        .filter(|p| p["targetShortfall"].is_number())
        .count();
    assert_eq!(tradeoff.series("objective-points").0, objectives);
    assert_eq!(tradeoff.series("level-points").0, points.len() - objectives);
    assert_eq!(tradeoff.series("predictive").0, 1);
    let mase = json["accuracy"]["mase"].as_f64().unwrap();
    assert!(
        dom.contains(&format!("{mase:.3}")),
        "the MASE shown is the JSON's"
    );

    browser
        .screenshot(url.as_str(), 1280, 3000)
        .await
        .assert_drawn("the report");

    // A folder has no single report.
    let folder = kedastral(&[
        "--input",
        dir.path().to_str().unwrap(),
        "--report",
        "x.html",
    ])
    .output()
    .unwrap();
    assert!(!folder.status.success());
    assert!(String::from_utf8_lossy(&folder.stderr).contains("--report draws one history"));
}
