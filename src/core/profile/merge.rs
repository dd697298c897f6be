//! `extends:` as one generic merge over the profile's value tree, so a new field
//! needs no merge code.
//!
//! Each file is decoded strictly on its own first (its errors name its own
//! lines); the two profiles are then written out as JSON values in which every
//! positioned value keeps its line, column and file, merged by the rules below, and
//! decoded back into a [`Profile`].
//!
//! The rules, as the profile format documents them:
//! - a mapping merges key by key; a key on one side only is kept;
//! - a list is appended after the base's (`mounts`, `ports`);
//! - anything else replaces the base's, and so does a positioned value as a whole
//!   (a mount, a port, `ingress.manifest`): it is one thing from one file;
//! - except at the paths in [`EXCEPTIONS`]: `extends` is never inherited (it says
//!   where the file that writes it starts from), and node labels and taints merge
//!   inside their position by the rules above, the result standing where the
//!   extending profile wrote it.

use serde_json::{Map, Value};

use super::Profile;
use crate::core::yaml::{self, POSITIONED_MARKER};

/// How a field departs from the generic rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exception {
    /// Taken from the extending profile only, never from the base.
    NotInherited,
    /// A positioned value whose insides merge instead of replacing.
    MergedThroughPosition,
}

/// The fields that depart from the generic rules, by field path (`*` is any key).
/// Node labels merge key by key and taints append, per node or node set.
const EXCEPTIONS: &[(&[&str], Exception)] = &[
    (&["extends"], Exception::NotInherited),
    (&["nodes", "labels", "*"], Exception::MergedThroughPosition),
    (&["nodes", "taints", "*"], Exception::MergedThroughPosition),
];

/// Why two profiles could not be merged: only when a value tree fails to decode
/// back, which the rules above cannot cause.
#[derive(Debug)]
pub struct MergeError(pub String);

/// `over` merged over `base`.
pub fn merged(over: &Profile, base: &Profile) -> Result<Profile, MergeError> {
    yaml::with_positions(|| {
        let over = serde_json::to_value(over).map_err(|e| MergeError(e.to_string()))?;
        let base = serde_json::to_value(base).map_err(|e| MergeError(e.to_string()))?;
        let mut path = Vec::new();
        serde_json::from_value(merge(over, base, &mut path)).map_err(|e| MergeError(e.to_string()))
    })
}

/// `profile` with `file` recorded as the origin of every positioned value.
pub fn with_file(profile: &Profile, file: &str) -> Result<Profile, MergeError> {
    yaml::with_positions(|| {
        let mut value = serde_json::to_value(profile).map_err(|e| MergeError(e.to_string()))?;
        set_file(&mut value, file);
        serde_json::from_value(value).map_err(|e| MergeError(e.to_string()))
    })
}

fn is_positioned(value: &Map<String, Value>) -> bool {
    value.get(POSITIONED_MARKER) == Some(&Value::Bool(true))
}

fn exception(path: &[String]) -> Option<Exception> {
    EXCEPTIONS.iter().find_map(|(pattern, exception)| {
        let matches = pattern.len() == path.len()
            && pattern
                .iter()
                .zip(path)
                .all(|(p, key)| *p == "*" || p == key);
        matches.then_some(*exception)
    })
}

fn merge(over: Value, base: Value, path: &mut Vec<String>) -> Value {
    match (over, base) {
        (Value::Object(mut over), Value::Object(mut base)) => {
            if is_positioned(&over) || is_positioned(&base) {
                let through = exception(path) == Some(Exception::MergedThroughPosition);
                if !(is_positioned(&over) && is_positioned(&base) && through) {
                    return Value::Object(over);
                }
                let inner_over = over.remove("value").unwrap_or(Value::Null);
                let inner_base = base.remove("value").unwrap_or(Value::Null);
                let mut inner_path = Vec::new();
                over.insert(
                    "value".into(),
                    merge(inner_over, inner_base, &mut inner_path),
                );
                return Value::Object(over);
            }
            base.retain(|key, _| {
                path.push(key.clone());
                let inherited = exception(path) != Some(Exception::NotInherited);
                path.pop();
                inherited
            });
            for (key, over_value) in over {
                let merged = match base.remove(&key) {
                    Some(base_value) => {
                        path.push(key.clone());
                        let merged = merge(over_value, base_value, path);
                        path.pop();
                        merged
                    }
                    None => over_value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (Value::Array(over), Value::Array(mut base)) => {
            base.extend(over);
            Value::Array(base)
        }
        (over, _) => over,
    }
}

fn set_file(value: &mut Value, file: &str) {
    match value {
        Value::Object(map) => {
            if is_positioned(map) {
                map.insert("file".into(), Value::String(file.into()));
            }
            map.values_mut().for_each(|v| set_file(v, file));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_file(v, file)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str, file: &str) -> Profile {
        let profile = Profile::decode(text).unwrap_or_else(|e| panic!("{e:?}"));
        with_file(&profile, file).unwrap_or_else(|e| panic!("{e:?}"))
    }

    const BASE: &str = "\
apiVersion: devcluster.dev/v1alpha1
kind: Profile
name: base
description: the base
nodes:
  workers: 2
  labels:
    workers: {tier: base, zone: a}
  taints:
    workers: [\"a=1:NoSchedule\"]
mounts:
  - {hostPath: ./base, containerPath: /base}
ports:
  - {containerPort: 30000, hostPort: 8000}
ingress:
  enabled: true
  controller: custom
  manifest:
    url: https://example.com/base.yaml
    sha256: aaaa
    namespace: base
    podSelector: {app: base, tier: base}
networking:
  podSubnet: 10.1.0.0/16
  kubeProxyMode: ipvs
";

    const OVER: &str = "\
apiVersion: devcluster.dev/v1alpha1
kind: Profile
extends: ./base.yaml
name: over
nodes:
  labels:
    workers: {zone: b}
    control-planes: {role: cp}
  taints:
    workers: [\"b=2:NoExecute\"]
mounts:
  - {hostPath: ./over, containerPath: /over}
ingress:
  manifest:
    url: https://example.com/over.yaml
    sha256: bbbb
    namespace: over
    podSelector: {app: over}
networking:
  serviceSubnet: 10.2.0.0/16
";

    fn merged_profile() -> Profile {
        let base = decode(BASE, "base.yaml");
        let over = decode(OVER, "over.yaml");
        merged(&over, &base).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn scalars_replace_and_unset_ones_come_from_the_base() {
        let profile = merged_profile();
        let name = profile.name.unwrap_or_else(|| panic!("name"));
        assert_eq!(name.value, "over");
        assert_eq!((name.line, name.file.as_deref()), (4, Some("over.yaml")));
        assert_eq!(profile.description.as_deref(), Some("the base"));
        let nodes = profile.nodes.unwrap_or_else(|| panic!("nodes"));
        assert_eq!(nodes.workers.map(|w| w.value), Some(2));
        let extends = profile.extends.unwrap_or_else(|| panic!("extends"));
        assert_eq!(extends.value, "./base.yaml");
    }

    #[test]
    fn lists_append_after_the_base_and_keep_their_own_file() {
        let profile = merged_profile();
        let mounts: Vec<_> = profile
            .mounts
            .iter()
            .map(|m| (m.value.host_path.as_str(), m.file.as_deref(), m.line))
            .collect();
        assert_eq!(
            mounts,
            [
                ("./base", Some("base.yaml"), 12),
                ("./over", Some("over.yaml"), 12)
            ]
        );
        assert_eq!(profile.ports.len(), 1);
        assert_eq!(profile.ports[0].file.as_deref(), Some("base.yaml"));
    }

    #[test]
    fn labels_merge_key_by_key_and_taints_append_where_the_extending_file_says() {
        let nodes = merged_profile().nodes.unwrap_or_else(|| panic!("nodes"));
        let workers = &nodes.labels["workers"];
        assert_eq!(workers.value["tier"], "base");
        assert_eq!(workers.value["zone"], "b");
        assert_eq!(
            (workers.line, workers.file.as_deref()),
            (7, Some("over.yaml"))
        );
        assert_eq!(nodes.labels["control-planes"].value["role"], "cp");
        let taints = &nodes.taints["workers"];
        assert_eq!(taints.value, ["a=1:NoSchedule", "b=2:NoExecute"]);
        assert_eq!(
            (taints.line, taints.file.as_deref()),
            (10, Some("over.yaml"))
        );
    }

    #[test]
    fn a_positioned_value_replaces_as_a_whole() {
        // The manifest is one thing from one file: no key of the base's survives.
        let ingress = merged_profile()
            .ingress
            .unwrap_or_else(|| panic!("ingress"));
        let manifest = ingress.manifest.unwrap_or_else(|| panic!("manifest"));
        assert_eq!(manifest.value.url, "https://example.com/over.yaml");
        assert_eq!(manifest.value.pod_selector.len(), 1);
        assert_eq!(manifest.file.as_deref(), Some("over.yaml"));
        assert_eq!(ingress.enabled.map(|e| e.value), Some(true));
    }

    #[test]
    fn nested_mappings_merge_field_by_field() {
        let net = merged_profile()
            .networking
            .unwrap_or_else(|| panic!("networking"));
        assert_eq!(
            net.pod_subnet.map(|v| v.value).as_deref(),
            Some("10.1.0.0/16")
        );
        assert_eq!(
            net.service_subnet.map(|v| v.value).as_deref(),
            Some("10.2.0.0/16")
        );
        assert_eq!(
            net.kube_proxy_mode.map(|v| v.value).as_deref(),
            Some("ipvs")
        );
    }

    #[test]
    fn positions_do_not_leak_into_plain_serialisation() {
        let json = serde_json::to_value(merged_profile()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["name"], "over");
        assert!(!json.to_string().contains(POSITIONED_MARKER), "{json}");
    }

    /// Every profile this repository ships or tests with, each decoded on its own.
    fn sample_profiles() -> Vec<Profile> {
        let mut texts: Vec<(String, String)> = crate::core::profile::BUILTIN_PROFILES
            .iter()
            .map(|p| (p.text.to_string(), format!("builtin:{}", p.name)))
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
        for entry in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
                texts.push((text, path.display().to_string()));
            }
        }
        assert!(texts.len() > 8, "{} profiles", texts.len());
        texts
            .iter()
            .map(|(text, file)| decode(text, file))
            .collect()
    }

    #[test]
    fn merging_with_an_empty_profile_changes_no_field() {
        // Covers every field the samples set, with no field named here.
        let empty = decode(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n",
            "empty.yaml",
        );
        for profile in sample_profiles() {
            let over_empty = merged(&profile, &empty).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(over_empty, profile);
            let mut expected = profile.clone();
            expected.extends = None;
            let under_empty = merged(&empty, &profile).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(under_empty, expected);
        }
    }
}
