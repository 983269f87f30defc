//! `--models-dir`: models dropped into a folder, named by their own
//! `describe`, beside the built-ins; what `GET /models` says of each.

use sha2::{Digest, Sha256};

use crate::cli::kedastral;
use crate::forecaster::{forecaster_on, workload_table};
use std::time::Duration;

use crate::services::{Prometheus, eventually, get, write_file};
use crate::support;

fn sha256(path: &std::path::Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_in_the_directory_is_used_by_its_name_and_listed_with_its_hash() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let models = tempfile::tempdir().unwrap();
    let window = models.path().join("window.wasm");
    std::fs::copy(support::fixture("kedastral-example-window"), &window).unwrap();
    std::fs::write(
        models.path().join("broken.wasm"),
        b"\0asm but not a component",
    )
    .unwrap();
    let config = [
        workload_table("by-name", "nasa_requests", "recent-window", ""),
        workload_table(
            "mixed",
            "nasa_requests",
            "auto",
            "candidates = [\"recent-window\", \"-fracast\", \"-arima\", \"-mstl\"]",
        ),
    ]
    .concat();
    let dir = models.path().to_str().unwrap();
    let (forecaster, _config) = forecaster_on(&prometheus, &config, &["--models-dir", dir]).await;
    let forecast = forecaster.forecast("by-name").await;
    assert_eq!(forecast["model"]["name"], "recent-window");
    let mixed = forecaster.forecast("mixed").await;
    let candidates: Vec<&str> = mixed["selection"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(candidates.contains(&"recent-window"), "{candidates:?}");

    let (status, listing) = get(&forecaster.url("/models")).await.unwrap();
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["modelsDir"], dir);
    let models_loaded = listing["models"].as_array().unwrap();
    let entry = models_loaded
        .iter()
        .find(|m| m["name"] == "recent-window")
        .unwrap_or_else(|| panic!("recent-window listed: {listing}"));
    assert_eq!(entry["source"], "directory");
    assert_eq!(entry["path"], window.to_str().unwrap());
    assert_eq!(entry["contentHash"], sha256(&window));
    assert_eq!(entry["workloads"], serde_json::json!(["by-name", "mixed"]));
    assert!(matches!(
        entry["compiled"].as_str(),
        Some("compiled" | "cache")
    ));
    let baseline = models_loaded
        .iter()
        .find(|m| m["name"] == "baseline")
        .unwrap();
    assert_eq!(baseline["source"], "built-in");
    assert_eq!(baseline["workloads"], serde_json::json!(["mixed"]));
    let refused = listing["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{listing}");
    assert!(
        refused[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("broken.wasm")
    );
    assert!(!refused[0]["error"].as_str().unwrap().is_empty());
}

#[test]
fn two_files_of_one_name_a_built_in_name_or_an_unknown_name_are_refused_at_start() {
    let models = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = write_file(
        config_dir.path(),
        "workloads.toml",
        &workload_table("w", "q", "recent-window", ""),
    );
    let check = |dir: &std::path::Path| {
        let out = kedastral(&[
            "forecaster",
            "--check",
            "--config",
            config.to_str().unwrap(),
            "--prom-url",
            "http://127.0.0.1:9",
            "--models-dir",
            dir.to_str().unwrap(),
        ]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let a = models.path().join("a.wasm");
    let b = models.path().join("b.wasm");
    std::fs::copy(support::fixture("kedastral-example-window"), &a).unwrap();
    let (ok, _) = check(models.path());
    assert!(ok, "one file of the name");
    std::fs::copy(&a, &b).unwrap();
    let (ok, err) = check(models.path());
    assert!(!ok);
    for part in [a.to_str().unwrap(), b.to_str().unwrap(), "`recent-window`"] {
        assert!(err.contains(part), "{part} named: {err}");
    }
    std::fs::remove_file(&b).unwrap();

    let (_, baseline) = kedastral::model::source::BUILTINS[0];
    std::fs::write(models.path().join("mine.wasm"), baseline).unwrap();
    let (ok, err) = check(models.path());
    assert!(!ok);
    assert!(
        err.contains("mine.wasm") && err.contains("the name of a built-in"),
        "{err}"
    );
    std::fs::remove_file(models.path().join("mine.wasm")).unwrap();

    std::fs::remove_file(&a).unwrap();
    let (ok, err) = check(models.path());
    assert!(!ok);
    assert!(
        err.contains("recent-window") && err.contains("in --models-dir"),
        "{err}"
    );
}

/// `bytes` with a custom section appended: another file (another hash) of
/// the same component, as a rebuild with other metadata would be.
fn another_version(bytes: &[u8]) -> Vec<u8> {
    let name = b"kedastral-test";
    let payload = b"version two";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128, "one-byte LEB128 sizes");
    let mut out = bytes.to_vec();
    out.extend([0u8, size as u8, name.len() as u8]);
    out.extend(name);
    out.extend(payload);
    out
}

/// Points `dir/..data` at `dir/..VERSION`, holding `window.wasm` with
/// `bytes`, by renaming a new symlink over the old one: what the kubelet
/// does when a mounted ConfigMap changes.
fn kubelet_swap(dir: &std::path::Path, version: &str, bytes: &[u8]) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("window.wasm"), bytes).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(&data, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

/// A condition on (`GET /models`, `GET /forecast/current`).
type Check = Box<dyn Fn(&serde_json::Value, &serde_json::Value) -> bool + Send + Sync>;

fn model_entry<'a>(listing: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    listing["models"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_added_replaced_refused_and_removed_while_the_forecaster_runs() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let models = tempfile::tempdir().unwrap();
    let dir = models.path();
    let v1 = std::fs::read(support::fixture("kedastral-example-window")).unwrap();
    // A ConfigMap volume's layout: the key a symlink through `..data`.
    kubelet_swap(dir, "v1", &v1);
    std::os::unix::fs::symlink("..data/window.wasm", dir.join("window.wasm")).unwrap();
    let config = [
        workload_table(
            "w",
            "nasa_requests",
            "recent-window",
            "stale-after = \"1h\"",
        ),
        workload_table("steady", "nasa_requests", "baseline", ""),
    ]
    .concat();
    let (forecaster, config_dir) = forecaster_on(
        &prometheus,
        &config,
        &["--models-dir", dir.to_str().unwrap()],
    )
    .await;
    let first = forecaster.forecast("w").await;
    let hash = |bytes: &[u8]| {
        let digest = Sha256::digest(bytes);
        format!(
            "sha256:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    assert_eq!(first["model"]["contentHash"], hash(&v1));
    let models_url = forecaster.url("/models");
    let current = forecaster.url("/forecast/current?workload=w");
    let wait_for = |what: &'static str, check: Check| {
        let (models_url, current) = (models_url.clone(), current.clone());
        async move {
            eventually(what, Duration::from_secs(30), || {
                let (models_url, current) = (models_url.clone(), current.clone());
                let check = &check;
                async move {
                    let (_, listing) = get(&models_url).await?;
                    let (_, forecast) = get(&current).await?;
                    check(&listing, &forecast).then_some(())
                }
            })
            .await
        }
    };

    // A model dropped in is listed, ready for a workload to name it.
    std::fs::copy(
        support::fixture("kedastral-test-hostile"),
        dir.join("hostile.wasm"),
    )
    .unwrap();
    wait_for(
        "the dropped-in model listed",
        Box::new(|l, _| model_entry(l, "hostile").is_some_and(|m| m["source"] == "directory")),
    )
    .await;

    // A workload added by a reload can name it.
    let config_path = config_dir.path().join("workloads.toml");
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text.push_str(&workload_table(
        "late",
        "nasa_requests",
        "hostile",
        "params = { behaviour = \"ok\" }",
    ));
    std::fs::write(&config_path, text).unwrap();
    forecaster.hang_up();
    let late = forecaster.forecast("late").await;
    assert_eq!(late["model"]["name"], "hostile");

    // A new version, by a symlink swap: the next forecasts come from it.
    let v2 = another_version(&v1);
    kubelet_swap(dir, "v2", &v2);
    let h2 = hash(&v2);
    wait_for(
        "forecasts from the new version",
        Box::new(move |l, f| {
            f["model"]["contentHash"] == h2.as_str()
                && model_entry(l, "recent-window").is_some_and(|m| m["contentHash"] == h2.as_str())
        }),
    )
    .await;
    // Said in the log (written as its lines come, so it may trail the
    // forecast published after it).
    eventually(
        "the new version's log line",
        Duration::from_secs(30),
        || async {
            forecaster
                .log()
                .contains("a new version of a model is served")
                .then_some(())
        },
    )
    .await;

    // Garbage in its place: refused, and the version before keeps serving.
    kubelet_swap(dir, "v3", b"not a component at all");
    wait_for(
        "the garbage refused",
        Box::new(|l, _| {
            model_entry(l, "recent-window").is_some_and(|m| m["lastLoadError"].is_string())
                && l["refused"].as_array().is_some_and(|r| {
                    r.iter().any(|f| {
                        f["path"]
                            .as_str()
                            .is_some_and(|p| p.ends_with("window.wasm"))
                    })
                })
        }),
    )
    .await;
    let refused_at = chrono::Utc::now();
    let h2 = hash(&v2);
    wait_for(
        "a forecast after the refusal, from the version before",
        Box::new(move |_, f| {
            let computed = f["computedAt"]
                .as_str()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok());
            computed.is_some_and(|t| t > refused_at) && f["model"]["contentHash"] == h2.as_str()
        }),
    )
    .await;

    // Removed: the workload keeps its last forecast and says why.
    std::fs::remove_file(dir.join("window.wasm")).unwrap();
    wait_for(
        "the removal told",
        Box::new(|_, f| {
            f["lastError"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("removed from --models-dir"))
                && f["values"].as_array().is_some_and(|v| !v.is_empty())
        }),
    )
    .await;
    for (result, least) in [("loaded", 2.0), ("refused", 1.0), ("removed", 1.0)] {
        let n = forecaster
            .metric(&format!(
                "kedastral_model_reloads_total{{result=\"{result}\"}}"
            ))
            .await
            .unwrap_or_default();
        assert!(n >= least, "{result}: {n}");
    }
    // The other workload was served throughout.
    let steady = forecaster.forecast("steady").await;
    assert_eq!(steady["stale"], false);
}
