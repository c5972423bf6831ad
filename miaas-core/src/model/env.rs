//! [`Env`]: a deployment's environment, compact in memory.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Environment variables by name, sorted, each name once. In JSON an object of
/// strings, as a `BTreeMap` would be; in memory one allocation for the pairs (a
/// small `BTreeMap` takes a whole 11-entry node), which matters when a server keeps
/// 100,000 deployments. `Debug` shows the names only: the values are secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(Box<[(String, String)]>);

impl Env {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The names and values, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// How many variables.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every value replaced by `shown`, names kept.
    pub fn with_values(&self, shown: &str) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, _)| (k.clone(), shown.to_string()))
                .collect(),
        )
    }

    /// From pairs in any order; of a name given twice the last value counts.
    fn from_pairs(mut pairs: Vec<(String, String)>) -> Self {
        // stable: equal names keep their order, so the last one is last
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        Self(unique.into_boxed_slice())
    }
}

impl From<BTreeMap<String, String>> for Env {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }
}

impl From<&Env> for BTreeMap<String, String> {
    fn from(env: &Env) -> Self {
        env.0.iter().cloned().collect()
    }
}

impl From<Env> for BTreeMap<String, String> {
    fn from(env: Env) -> Self {
        env.0.into_vec().into_iter().collect()
    }
}

impl PartialEq<BTreeMap<String, String>> for Env {
    fn eq(&self, map: &BTreeMap<String, String>) -> bool {
        self.len() == map.len()
            && self
                .iter()
                .zip(map)
                .all(|((k, v), (mk, mv))| k == mk && v == mv)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.keys().map(|k| (k, super::REDACTED)))
            .finish()
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = Env;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Env, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                while let Some(pair) = access.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Env::from_pairs(pairs))
            }
        }
        deserializer.deserialize_map(EnvVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_json_as_a_sorted_map_of_strings() {
        let env: Env = serde_json::from_str(r#"{"B": "2", "A": "1", "B": "3"}"#).expect("env");
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), Some("3"), "the last value of a name counts");
        assert_eq!(env.get("C"), None);
        assert_eq!(
            serde_json::to_string(&env).expect("json"),
            r#"{"A":"1","B":"3"}"#
        );
        let map: BTreeMap<String, String> = (&env).into();
        assert!(env == map);
        assert_eq!(Env::from(map), env);
        assert!(serde_json::from_str::<Env>(r#"{"A": 1}"#).is_err());
        assert_eq!(format!("{env:?}"), r#"{"A": "***", "B": "***"}"#);
    }
}
