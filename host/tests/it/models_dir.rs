//! `--models-dir`: models dropped into a folder, named by their own
//! `describe`, beside the built-ins; what `GET /models` says of each.

use sha2::{Digest, Sha256};

use crate::cli::kedastral;
use crate::forecaster::{forecaster_on, workload_table};
use crate::services::{Prometheus, get, write_file};
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
