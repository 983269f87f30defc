//! A models directory (`--models-dir`): every `.wasm` in it, loaded and
//! checked against the world, available by the name its `describe` gives,
//! beside the built-ins.
//!
//! - Files whose name starts with `.` are skipped: a Kubernetes volume from
//!   a ConfigMap keeps its versions in `..data` and `..2026_...`
//!   directories, and shows each key as a symlink into them, which is what
//!   is read (symlinks are followed).
//! - Two files claiming one name, or a name that is a built-in's or
//!   `auto`, stop the scan with an error naming both.
//! - A file that does not load is *refused*: kept with its error, for the
//!   log and `GET /models`, while every other file is used.
//!
//! Files are taken in name order, so "first" and "second" in an error are
//! the same on every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::runtime::content_hash;
use super::source::{AUTO, BUILTINS};
use super::{LoadedModel, ModelRuntime};

/// One model of the directory.
#[derive(Clone)]
pub struct DirModel {
    pub path: PathBuf,
    pub model: LoadedModel,
}

/// A `.wasm` of the directory that did not load, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub path: PathBuf,
    pub error: String,
    /// The digest of what was refused (`None`: it could not be read).
    pub hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("--models-dir {dir}: cannot list it: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--models-dir: {first} and {second} both describe themselves as model `{name}`; \
         rename one (its `describe` name) or remove it"
    )]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "--models-dir: {path} describes itself as model `{name}`, the name of a built-in; \
         give it a name of its own"
    )]
    ShadowsBuiltin { name: String, path: PathBuf },
}

/// The models of a directory, by name, and the files refused.
#[derive(Clone, Default)]
pub struct ModelsDir {
    pub dir: PathBuf,
    pub models: BTreeMap<String, DirModel>,
    pub refused: Vec<Refused>,
}

impl ModelsDir {
    /// Loads every `.wasm` of `dir`.
    pub fn scan(runtime: &ModelRuntime, dir: &Path) -> Result<Self, CatalogError> {
        let mut found = Self {
            dir: dir.to_owned(),
            ..Self::default()
        };
        for path in wasm_files(dir)? {
            let (loaded, hash) = load_file(runtime, &path);
            match loaded {
                Ok(model) => found.add(path, model)?,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "model in --models-dir refused");
                    found.refused.push(Refused { path, error, hash });
                }
            }
        }
        Ok(found)
    }

    fn add(&mut self, path: PathBuf, model: LoadedModel) -> Result<(), CatalogError> {
        let name = model.info().name.clone();
        if reserved(&name) {
            return Err(CatalogError::ShadowsBuiltin { name, path });
        }
        if let Some(first) = self.models.get(&name) {
            return Err(CatalogError::Duplicate {
                name,
                first: first.path.clone(),
                second: path,
            });
        }
        tracing::info!(model = %name, version = %model.info().version, path = %path.display(),
            hash = model.content_hash(), "model loaded from --models-dir");
        self.models.insert(name, DirModel { path, model });
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&DirModel> {
        self.models.get(name)
    }

    /// The names it holds, for an error.
    pub fn names(&self) -> String {
        if self.models.is_empty() {
            "none".to_owned()
        } else {
            self.models.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

/// Reads and loads one file: the model or why not, and the digest of the
/// bytes read (`None` when they could not be).
fn load_file(runtime: &ModelRuntime, path: &Path) -> (Result<LoadedModel, String>, Option<String>) {
    match std::fs::read(path) {
        Err(e) => (Err(format!("cannot read {}: {e}", path.display())), None),
        Ok(bytes) => (load_read(runtime, path, &bytes), Some(content_hash(&bytes))),
    }
}

/// Loads the `bytes` read from `path`.
pub fn load_read(runtime: &ModelRuntime, path: &Path, bytes: &[u8]) -> Result<LoadedModel, String> {
    runtime
        .load_bytes(&path.display().to_string(), bytes)
        .map_err(|e| e.to_string())
}

/// Whether a directory's model may take `name`: not a built-in's or `auto`.
pub fn reserved(name: &str) -> bool {
    name == AUTO || BUILTINS.iter().any(|(b, _)| *b == name)
}

/// The `.wasm` files of `dir` (symlinks followed), by name; hidden entries
/// skipped.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        // `metadata` follows symlinks: a dangling one is skipped.
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_are_read_in_name_order_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("b.wasm"), b"x").unwrap();
        std::os::unix::fs::symlink(data.join("b.wasm"), dir.path().join("b.wasm")).unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("c.wasm")).unwrap();
        let names: Vec<String> = wasm_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.wasm", "b.wasm"]);
        assert!(matches!(
            wasm_files(&dir.path().join("missing")),
            Err(CatalogError::ReadDir { .. })
        ));
    }
}
