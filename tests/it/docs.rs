//! The README documents what the binary accepts: every command in the commands table,
//! every long flag somewhere, and every profile field of the JSON Schema in the
//! field reference. A command or field added without its documentation fails here.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::support;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(support::devcluster_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `--help` lists under "Commands:" (clap's own `help` left out).
fn subcommands(args: &[&str]) -> Vec<String> {
    help(args)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description wrapped onto the next line is indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// The long flags of a command's `--help` (`--help` and `--version` left out), each
/// with its short form when it has one.
fn long_flags(args: &[&str]) -> BTreeSet<(String, Option<String>)> {
    help(args)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (short, rest) = match line.split_once(", --") {
                Some((short, rest)) if short.len() == 2 && short.starts_with('-') => {
                    (Some(short.to_string()), rest)
                }
                _ => (None, line.strip_prefix("--")?),
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty() && name != "help" && name != "version")
                .then(|| (format!("--{name}"), short))
        })
        .collect()
}

#[test]
fn every_command_is_in_the_commands_table_and_every_flag_in_the_readme() {
    let readme = readme();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Commands"))
        .take_while(|l| !l.starts_with("### "))
        .filter(|l| l.starts_with("| `devcluster"))
        .collect();
    let mut missing = Vec::new();
    let commands = subcommands(&[]);
    assert!(commands.len() >= 10, "{commands:?}");
    for command in &commands {
        let entry = format!("`devcluster {command}");
        let also = format!("/ `devcluster {command}");
        if !table
            .iter()
            .any(|row| row.starts_with(&format!("| {entry}")) || row.contains(&also))
        {
            missing.push(format!("command `{command}` has no row"));
        }
        let mut paths = vec![vec![command.as_str()]];
        let nested = subcommands(&[command]);
        for sub in &nested {
            paths.push(vec![command.as_str(), sub.as_str()]);
        }
        for path in paths {
            for (flag, short) in long_flags(&path) {
                let named = |f: &str| {
                    readme.contains(&format!("`{f}"))
                        || readme.contains(&format!("[{f}"))
                        || readme.contains(&format!(" {f} "))
                };
                if !named(&flag) && !short.as_deref().is_some_and(named) {
                    missing.push(format!("`devcluster {}` flag {flag}", path.join(" ")));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented in README.md:\n{}",
        missing.join("\n")
    );
}

/// Every leaf field path of the schema (`mounts[].hostPath`, `nodes.workers`): the
/// fields without properties of their own; a free-form map (labels, taints) is one
/// field.
fn field_paths(schema: &Value, node: &Value, prefix: &str, out: &mut Vec<String>) {
    let node = resolve(schema, node);
    let items = node.get("items").map(|items| resolve(schema, items));
    if let Some(items) = items
        && items.get("properties").is_some()
    {
        return field_paths(schema, items, &format!("{prefix}[]"), out);
    }
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let before = out.len();
        field_paths(schema, property, &path, out);
        if out.len() == before {
            out.push(path);
        }
    }
}

/// Follows `$ref`, and the one non-null branch of an `anyOf`/`oneOf` (an optional
/// field).
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        return resolve(schema, schema.pointer(pointer).unwrap_or(node));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = node.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = branches
                .iter()
                .filter(|b| b.get("type") != Some(&Value::from("null")))
                .collect();
            if let [one] = real.as_slice() {
                return resolve(schema, one);
            }
        }
    }
    node
}

#[test]
fn every_profile_field_is_in_the_field_reference() {
    let out = Command::new(support::devcluster_bin())
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut paths = Vec::new();
    field_paths(&schema, &schema, "", &mut paths);
    assert!(
        paths.contains(&"mounts[].hostPath".to_string()),
        "{paths:?}"
    );
    let readme = readme();
    let rows: Vec<(String, String)> = readme
        .lines()
        .skip_while(|l| !l.starts_with("### Field reference"))
        .take_while(|l| !l.starts_with("## ") || l.starts_with("### Field"))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cell = l.split(" | ").next().unwrap_or("").to_string();
            (cell, l.to_string())
        })
        .collect();
    let documented = |path: &str| {
        if rows
            .iter()
            .any(|(cell, _)| cell.contains(&format!("`{path}`")))
        {
            return true;
        }
        // A parent documented as a whole: `networking.*` covers its fields; a row
        // such as `ingress.manifest` must name each field it covers.
        let leaf = path.rsplit(['.', ']']).next().unwrap_or(path);
        let mut parent = path;
        while let Some((head, _)) = parent.rsplit_once('.') {
            let head = head.trim_end_matches("[]");
            if rows.iter().any(|(cell, row)| {
                cell.contains(&format!("`{head}.*`"))
                    || (cell.contains(&format!("`{head}`")) && row.contains(leaf))
            }) {
                return true;
            }
            parent = head;
        }
        false
    };
    let missing: Vec<&String> = paths.iter().filter(|p| !documented(p)).collect();
    assert!(
        missing.is_empty(),
        "profile fields missing from README.md's field reference: {missing:?}"
    );
}
