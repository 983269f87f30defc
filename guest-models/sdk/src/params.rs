//! Model parameters: `key=value` strings checked against what a model declares.

use std::fmt::Display;
use std::ops::RangeInclusive;
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

impl Params<'_> {
    /// The value of `name` as one of a fixed set of words (case-insensitive);
    /// anything else is an error listing the words.
    pub fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)]) -> Result<T, ModelError> {
        let raw = self.raw(name).trim();
        choices
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(raw))
            .map(|&(_, value)| value)
            .ok_or_else(|| {
                let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
                ModelError::InvalidInput(format!(
                    "parameter `{name}`: `{raw}` is not one of {}",
                    words.join(", ")
                ))
            })
    }

    /// The value of `name` parsed as `T` and inside `range`.
    pub fn in_range<T>(&self, name: &str, range: RangeInclusive<T>) -> Result<T, ModelError>
    where
        T: FromStr + PartialOrd + Display,
        T::Err: Display,
    {
        let value: T = self.get(name)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ModelError::InvalidInput(format!(
                "parameter `{name}` = {value} is outside [{}, {}]",
                range.start(),
                range.end()
            )))
        }
    }

    /// A `auto|true|false` setting: `None` for `auto`, which the model
    /// resolves from the data (for example clamping at zero when
    /// [`crate::stats::all_non_negative`] holds for the history).
    pub fn switch(&self, name: &str) -> Result<Option<bool>, ModelError> {
        self.choice(
            name,
            &[("auto", None), ("true", Some(true)), ("false", Some(false))],
        )
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
    fn choices_ranges_and_switches() {
        let specs = vec![
            ParamSpec::new("ic", "aicc", ""),
            ParamSpec::new("max-p", "3", ""),
            ParamSpec::new("non-negative", "auto", ""),
        ];
        let none: Vec<(String, String)> = vec![];
        let p = Params::new(&none, &specs).unwrap();
        assert_eq!(p.choice("ic", &[("aic", 1), ("AICc", 2)]).unwrap(), 2);
        assert_eq!(p.in_range("max-p", 0..=5).unwrap(), 3usize);
        assert_eq!(p.switch("non-negative").unwrap(), None);

        let given = vec![
            ("ic".to_owned(), "hqic".to_owned()),
            ("max-p".to_owned(), "9".to_owned()),
            ("non-negative".to_owned(), "false".to_owned()),
        ];
        let p = Params::new(&given, &specs).unwrap();
        let err = p.choice("ic", &[("aic", 1), ("aicc", 2)]).unwrap_err();
        assert_eq!(
            err,
            ModelError::InvalidInput("parameter `ic`: `hqic` is not one of aic, aicc".into())
        );
        let err = p.in_range("max-p", 0..=5usize).unwrap_err();
        assert_eq!(
            err,
            ModelError::InvalidInput("parameter `max-p` = 9 is outside [0, 5]".into())
        );
        assert_eq!(p.switch("non-negative").unwrap(), Some(false));
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
