//! `kedastral model new`: a model project to start from, in Rust or Python,
//! that builds into a component as it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// cargo build --target wasm32-wasip2 (wit-bindgen).
    Rust,
    /// componentize-py.
    Python,
}

/// The interface every model implements, written into each project so it
/// builds without this repository.
const WIT: &str = include_str!("../../wit/forecast-0.1.0/forecast.wit");

const RUST: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/model-rust/Cargo.toml"),
    ),
    ("src/lib.rs", include_str!("../templates/model-rust/lib.rs")),
    (
        "README.md",
        include_str!("../templates/model-rust/README.md"),
    ),
    (".gitignore", "/target\n"),
];

const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("../templates/model-python/app.py")),
    (
        "README.md",
        include_str!("../templates/model-python/README.md"),
    ),
    (".gitignore", "*.wasm\n__pycache__/\n"),
];

/// Writes a new model project into `dir` (which must not exist, or be
/// empty); returns the files written.
pub fn new_model(
    dir: &Path,
    language: Language,
    name: Option<&str>,
) -> anyhow::Result<Vec<PathBuf>> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("give the model a --name")?
            .to_owned(),
    };
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        bail!(
            "model name `{name}`: use lowercase letters, digits, - and _, starting with a letter (or pass --name)"
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let file = name.replace('-', "_");
    let fill = |text: &str| text.replace("{{name}}", &name).replace("{{file}}", &file);
    let files = match language {
        Language::Rust => RUST,
        Language::Python => PYTHON,
    };
    let mut written = Vec::new();
    for (path, text) in files
        .iter()
        .map(|(p, t)| (*p, fill(t)))
        .chain([("wit/forecast.wit", WIT.to_owned())])
    {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_written_with_its_name_and_refused_over_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("surge-model");
        let files = new_model(&target, Language::Rust, None).unwrap();
        assert_eq!(files.len(), 5);
        let lib = std::fs::read_to_string(target.join("src/lib.rs")).unwrap();
        assert!(lib.contains("name: \"surge-model\""));
        assert!(!lib.contains("{{"));
        let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
        assert!(readme.contains("release/surge_model.wasm"));
        assert!(
            std::fs::read_to_string(target.join("wit/forecast.wit"))
                .unwrap()
                .contains("world forecast-model")
        );
        let again = new_model(&target, Language::Python, None).unwrap_err();
        assert!(again.to_string().contains("not empty"), "{again}");
        let bad = new_model(&dir.path().join("Bad Name"), Language::Python, None).unwrap_err();
        assert!(bad.to_string().contains("model name"), "{bad}");
    }
}
