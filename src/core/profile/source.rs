//! Finding and reading profiles: `--profile NAME|PATH`, else `devcluster.yaml` in the
//! current directory or its parents, else the built-in `single`; then `extends:`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::diagnostic::Problem;
use crate::core::profile::{self, Profile};
use crate::core::yaml::MAX_INPUT_BYTES;

/// The file name devcluster looks for when no `--profile` is given.
pub const PROJECT_FILE: &str = "devcluster.yaml";
/// The built-in used when no profile is given and no project file is found.
pub const DEFAULT_BUILTIN: &str = "single";
/// How deep `extends:` may chain.
const MAX_EXTENDS_DEPTH: usize = 8;

/// Where a profile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRef {
    Builtin(String),
    File(PathBuf),
}

/// A profile with its `extends:` chain merged, and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: Profile,
    /// `builtin:NAME` or the file's path.
    pub source: String,
    /// Relative host paths resolve here.
    pub base_dir: PathBuf,
    /// The file problems are reported against.
    pub file: Option<Arc<str>>,
}

/// Picks the profile for `--profile` (or its absence).
///
/// A value that names an existing file, or looks like a path, is a file; otherwise
/// it is a built-in name.
pub fn resolve(arg: Option<&str>, cwd: &Path) -> ProfileRef {
    match arg {
        Some(arg) => {
            let path = crate::core::paths::normalize(&cwd.join(arg));
            let looks_like_path = arg.contains('/')
                || arg.ends_with(".yaml")
                || arg.ends_with(".yml")
                || arg.starts_with('.');
            if looks_like_path || (path.exists() && profile::builtin(arg).is_none()) {
                ProfileRef::File(path)
            } else {
                ProfileRef::Builtin(arg.to_string())
            }
        }
        None => cwd
            .ancestors()
            .map(|dir| dir.join(PROJECT_FILE))
            .find(|candidate| candidate.is_file())
            .map(ProfileRef::File)
            .unwrap_or_else(|| ProfileRef::Builtin(DEFAULT_BUILTIN.to_string())),
    }
}

/// Reads the profile and everything it extends, merged.
pub fn load(reference: &ProfileRef, cwd: &Path) -> Result<LoadedProfile, Vec<Problem>> {
    let mut chain = Vec::new();
    let loaded = load_one(reference, cwd, &mut chain)?;
    Ok(loaded)
}

fn load_one(
    reference: &ProfileRef,
    cwd: &Path,
    chain: &mut Vec<String>,
) -> Result<LoadedProfile, Vec<Problem>> {
    let (text, source, base_dir, file) = match reference {
        ProfileRef::Builtin(name) => {
            let builtin =
                profile::builtin(name).ok_or_else(|| {
                    vec![Problem::error(format!("no built-in profile named `{name}`")).hint(format!(
                    "the built-in profiles are {}; or pass a file path such as `./{name}.yaml`",
                    profile::BUILTIN_PROFILES
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))]
                })?;
            let label: Arc<str> = format!("builtin:{name}").into();
            (
                builtin.text.to_string(),
                label.to_string(),
                cwd.to_path_buf(),
                label,
            )
        }
        ProfileRef::File(path) => {
            let text = read_profile_file(path)?;
            let label: Arc<str> = path.display().to_string().into();
            let base = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| cwd.to_path_buf());
            (text, label.to_string(), base, label)
        }
    };
    if chain.contains(&source) {
        return Err(vec![
            Problem::error(format!(
                "`extends:` loops: {} -> {source}",
                chain.join(" -> ")
            ))
            .in_file(Some(file)),
        ]);
    }
    if chain.len() >= MAX_EXTENDS_DEPTH {
        return Err(vec![
            Problem::error(format!(
                "`extends:` chains more than {MAX_EXTENDS_DEPTH} profiles"
            ))
            .in_file(Some(file)),
        ]);
    }
    chain.push(source.clone());

    let profile = Profile::decode(&text).map_err(|e| {
        let mut problem = Problem::error(e.message).in_file(Some(file.clone()));
        problem.line = e.line;
        problem.column = e.column;
        problem.hint = e.hint;
        vec![problem]
    })?;
    let profile = profile
        .with_file(&file)
        .map_err(|e| merge_problem(e, &file))?;

    let merged = match profile.extends.clone() {
        None => profile,
        Some(extends) => {
            let parent_ref = match reference {
                ProfileRef::Builtin(_) => ProfileRef::Builtin(extends.value.clone()),
                ProfileRef::File(_) => resolve(Some(&extends.value), &base_dir),
            };
            let parent = load_one(&parent_ref, cwd, chain).map_err(|mut problems| {
                for problem in &mut problems {
                    if problem.file.is_none() {
                        *problem = problem.clone().at(&extends);
                    }
                }
                problems
            })?;
            profile
                .merged_over(&parent.profile)
                .map_err(|e| merge_problem(e, &file))?
        }
    };
    chain.pop();
    Ok(LoadedProfile {
        profile: merged,
        source,
        base_dir,
        file: Some(file),
    })
}

/// A profile that decoded but could not go through `extends:` merging: a fault in
/// devcluster, not in the profile.
fn merge_problem(error: profile::merge::MergeError, file: &Arc<str>) -> Vec<Problem> {
    vec![
        Problem::error(format!("could not merge the profile: {}", error.0))
            .in_file(Some(file.clone()))
            .hint("this is a bug in devcluster; please report it with the profile"),
    ]
}

/// Reads a profile file with a size bound, refusing directories and non-UTF-8 text.
fn read_profile_file(path: &Path) -> Result<String, Vec<Problem>> {
    let shown = path.display().to_string();
    let fail = |message: String, hint: &str| vec![Problem::error(message).hint(hint.to_string())];
    let metadata = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(
                format!("profile `{shown}` does not exist"),
                "check the path, or run `devcluster profiles list` for the built-in profiles",
            )
        } else {
            fail(
                format!("cannot read profile `{shown}`: {e}"),
                "check the file's permissions",
            )
        }
    })?;
    if metadata.is_dir() {
        return Err(fail(
            format!("profile `{shown}` is a directory"),
            "pass the profile file inside it, e.g. `--profile ./devcluster.yaml`",
        ));
    }
    if metadata.len() > MAX_INPUT_BYTES as u64 {
        return Err(fail(
            format!(
                "profile `{shown}` is {} bytes; profiles are limited to {} bytes",
                metadata.len(),
                MAX_INPUT_BYTES
            ),
            "a profile is a short YAML file; check that this is the right file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            fail(
                format!("cannot read profile `{shown}`: {e}"),
                "check the file's permissions",
            )
        })?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(fail(
            format!("profile `{shown}` is over {MAX_INPUT_BYTES} bytes"),
            "a profile is a short YAML file; check that this is the right file",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(
            format!(
                "profile `{shown}` is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "save the profile as UTF-8 YAML",
        )
    })
}
