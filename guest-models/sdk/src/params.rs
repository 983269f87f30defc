//! Model parameters: `key=value` strings checked against what a model declares.

use std::str::FromStr;

use crate::{ModelError, ParamSpec};

/// The request's parameters, checked against a model's [`ParamSpec`]s: an
/// unknown key is an error naming the keys that exist, so a typo is never
/// silently ignored.
#[derive(Debug)]
pub struct Params<'a> {
    given: &'a [(String, String)],
    specs: &'a [ParamSpec],
}

impl<'a> Params<'a> {
    pub fn new(given: &'a [(String, String)], specs: &'a [ParamSpec]) -> Result<Self, ModelError> {
        for (key, _) in given {
            if !specs.iter().any(|s| &s.name == key) {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                return Err(ModelError::InvalidInput(if known.is_empty() {
                    format!("unknown parameter `{key}`: this model takes no parameters")
                } else {
                    format!(
                        "unknown parameter `{key}`; known parameters: {}",
                        known.join(", ")
                    )
                }));
            }
        }
        Ok(Self { given, specs })
    }

    /// The raw string for `name`: the last value given, else the default.
    pub fn raw(&self, name: &str) -> &'a str {
        if let Some((_, v)) = self.given.iter().rev().find(|(k, _)| k == name) {
            return v.as_str();
        }
        self.specs
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.default_value.as_str())
            .unwrap_or_else(|| panic!("parameter `{name}` is not declared by the model"))
    }

    /// The value of `name` parsed as `T`; a value that does not parse is an
    /// [`ModelError::InvalidInput`] naming the parameter.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<T, ModelError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.raw(name);
        raw.trim().parse::<T>().map_err(|e| {
            ModelError::InvalidInput(format!("parameter `{name}`: cannot parse `{raw}`: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![ParamSpec::new("alpha", "0.5", "smoothing")]
    }

    #[test]
    fn unknown_key_is_refused_with_known_keys_listed() {
        let given = vec![("alhpa".to_owned(), "0.3".to_owned())];
        let specs = specs();
        let err = Params::new(&given, &specs).unwrap_err();
        assert_eq!(
            err,
            ModelError::InvalidInput("unknown parameter `alhpa`; known parameters: alpha".into())
        );
    }

    #[test]
    fn default_is_used_and_last_value_wins() {
        let specs = specs();
        let none: Vec<(String, String)> = vec![];
        assert_eq!(
            Params::new(&none, &specs)
                .unwrap()
                .get::<f64>("alpha")
                .unwrap(),
            0.5
        );
        let given = vec![
            ("alpha".to_owned(), "0.1".to_owned()),
            ("alpha".to_owned(), " 0.2 ".to_owned()),
        ];
        assert_eq!(
            Params::new(&given, &specs)
                .unwrap()
                .get::<f64>("alpha")
                .unwrap(),
            0.2
        );
    }

    #[test]
    fn unparsable_value_names_the_parameter() {
        let specs = specs();
        let given = vec![("alpha".to_owned(), "high".to_owned())];
        let err = Params::new(&given, &specs)
            .unwrap()
            .get::<f64>("alpha")
            .unwrap_err();
        assert!(
            matches!(err, ModelError::InvalidInput(m) if m.contains("`alpha`") && m.contains("high"))
        );
    }
}
