//! YAML in and out: the only module that knows which YAML crate devcluster uses.
//!
//! Decoding is strict and bounded: duplicate keys, unknown fields, aliases beyond a
//! small budget, deep nesting and oversized input are errors with a line and column,
//! never a panic or an unbounded allocation.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest profile or config devcluster reads. Real profiles are a few KiB.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// A decoding failure with the position the parser reported, when it knows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(MAX_INPUT_BYTES);
    budget.max_depth = 32;
    budget.max_aliases = 256;
    budget.max_anchors = 256;
    budget.max_nodes = 50_000;
    budget.max_events = 200_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_INPUT_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.strict_booleans = true;
    options.with_snippet = false;
    options.emit_comments = false;
    options
}

/// Decodes one YAML document into `T`, rejecting anything `T` does not describe.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError {
            message: format!(
                "the document is {} bytes; the limit is {MAX_INPUT_BYTES}",
                text.len()
            ),
            line: None,
            column: None,
        });
    }
    serde_saphyr::from_str_with_options(text, options()).map_err(|error| {
        let location = error.location();
        let line = location.map(|l| l.line()).filter(|l| *l > 0);
        let column = location.map(|l| l.column()).filter(|c| *c > 0);
        let mut message = readable(&first_line(&error.to_string()));
        if message == WHOLE_NUMBER
            && let Some(explained) = leading_zero(text, line, column)
        {
            message = explained;
        }
        YamlError {
            message,
            line,
            column,
        }
    })
}

const WHOLE_NUMBER: &str = "expected a whole number in range";

/// Why a number such as `0080` is refused, when that is the scalar at `line` and
/// `column`: profiles are YAML 1.2, where it is no integer, while YAML 1.1 readers
/// (kubectl's among them) take a leading zero as octal, so `0080` has no one
/// meaning.
fn leading_zero(text: &str, line: Option<u64>, column: Option<u64>) -> Option<String> {
    let row = text
        .lines()
        .nth(usize::try_from(line?).ok()?.checked_sub(1)?)?;
    let start = usize::try_from(column?).ok()?.checked_sub(1)?;
    let scalar: String = row
        .get(start..)?
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | '#'))
        .collect();
    let digits = scalar.strip_prefix(['-', '+']).unwrap_or(&scalar);
    if digits.len() < 2 || !digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sign = if scalar.starts_with('-') { "-" } else { "" };
    let plain = digits.trim_start_matches('0');
    let plain = if plain.is_empty() { "0" } else { plain };
    Some(format!(
        "`{scalar}` has a leading zero, which YAML 1.1 readers take as octal; write `{sign}{plain}`"
    ))
}

/// The parser's message without its own position suffix or snippet: devcluster
/// prints the position itself, as `file:line:column`.
fn first_line(rendered: &str) -> String {
    let line = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let line = match line.rfind(" at line ") {
        Some(index) => &line[..index],
        None => line,
    };
    let line = match line.find(", set DuplicateKeyPolicy") {
        Some(index) => &line[..index],
        None => line,
    };
    line.trim_start_matches("error: ").to_string()
}

/// The parser's wording where it names its own internals (budgets, options, Rust
/// types), in the words of someone writing a profile.
fn readable(message: &str) -> String {
    if let Some(breach) = message.strip_prefix("budget breached: ") {
        let kind = breach.split([' ', '{']).next().unwrap_or("");
        return match kind {
            "Depth" => "the document nests more than 32 levels deep; a profile needs a handful".into(),
            "Nodes" | "Events" | "Aliases" | "Anchors" => {
                "the document expands to more values than any profile needs (aliases are limited to 256)".into()
            }
            "Documents" => "the file holds more than one YAML document; a profile is one document".into(),
            _ => "the document exceeds devcluster's size limits for a profile".into(),
        };
    }
    if message.starts_with("recursion limit exceeded") {
        return "the document nests more than 32 levels deep; a profile needs a handful".into();
    }
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        return format!("duplicate key `{key}`: each key may appear once in a mapping");
    }
    if message.starts_with("invalid boolean") {
        return "expected `true` or `false` (YAML 1.1 spellings such as `yes` and `on` are refused)".into();
    }
    if message == "invalid i64" || message == "invalid u64" {
        return WHOLE_NUMBER.into();
    }
    if message == "expected mapping start" {
        return "expected a mapping of `key: value` lines".into();
    }
    message.to_string()
}

/// Decodes a multi-document manifest (`---` separated) into JSON values, skipping
/// empty documents. Bounded like profiles, with room for a few hundred documents.
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>, YamlError> {
    let mut options = options();
    // Kubernetes manifests are read as kubectl reads them (sigs.k8s.io/yaml on
    // go-yaml's YAML 1.1): `defaultMode: 0644` is octal, 420. YAML 1.2 has no such
    // integer and would make it the float 644.0, which the API server refuses
    // for an int32 field (Contour's render has one).
    options.legacy_octal_numbers = true;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_documents = 512;
        budget.max_nodes = 250_000;
        budget.max_events = 1_000_000;
    }
    let values: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|error| {
            let location = error.location();
            YamlError {
                message: first_line(&error.to_string()),
                line: location.map(|l| l.line()).filter(|l| *l > 0),
                column: location.map(|l| l.column()).filter(|c| *c > 0),
            }
        })?;
    Ok(values
        .into_iter()
        .filter(|v| !v.is_null())
        .map(whole_floats_as_integers)
        .collect())
}

/// A float with no fraction as the integer it is, all through `value`: kubectl
/// sends what go-yaml read as a float (`2.0`, or `0800`, no octal number) through
/// Go's encoding/json, which writes it without a fraction below 1e21, so an
/// integer field takes it; serde_json would write `800.0`, which the API server
/// refuses for one.
fn whole_floats_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 9.0e18 => {
                Value::from(float as i64)
            }
            _ => Value::Number(number),
        },
        Value::Array(items) => {
            Value::Array(items.into_iter().map(whole_floats_as_integers).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (key, whole_floats_as_integers(item)))
                .collect(),
        ),
        other => other,
    }
}

/// Encodes `value` as block-style YAML. Field order follows the types, so the same
/// value always gives the same bytes.
///
/// Long single-line strings (image references with digests, deep host paths) stay
/// plain scalars: folded blocks (`>-`) are valid YAML but hard to read and to grep.
/// Multi-line text is a literal block only where a [`LiteralBlock`] asks for one.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).map_err(|error| YamlError {
        message: error.to_string(),
        line: None,
        column: None,
    })
}

/// A string emitted as a YAML literal block (`|`), as kind's docs write patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralBlock(pub String);

impl Serialize for LiteralBlock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_saphyr::LitStr(&self.0).serialize(serializer)
    }
}

/// A decoded value with the line and column where it stood in its file.
///
/// Serialises as the bare value, so plans and schemas never see positions (except
/// inside [`with_positions`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
    /// The file the value came from, set by the profile reader after decoding.
    pub file: Option<std::sync::Arc<str>>,
}

impl<T> Located<T> {
    /// A value that came from no file (defaults, command-line flags).
    pub fn new(value: T) -> Self {
        Located {
            value,
            line: 0,
            column: 0,
            file: None,
        }
    }
}

/// The key that marks a [`Located`] value written out with its position, so the
/// value can pass through a generic tree (see [`with_positions`]) and come back.
pub const POSITIONED_MARKER: &str = "$located";

thread_local! {
    static WITH_POSITIONS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`Located`] serialising as `{"$located": true, value, line,
/// column, file}` and deserialising from that form, instead of as the bare value
/// read from YAML. Lets a profile go through a generic value and back without
/// losing where each value came from.
///
/// A scoped flag rather than an argument because serde's `Serialize` and
/// `Deserialize` carry no context: passing it explicitly would take a
/// `DeserializeSeed` (and a serializer wrapper) for every profile type, which is the
/// per-field code the generic merge exists to avoid. The flag is set only for the
/// duration of `f`, restored on every exit (a panic included), and nested calls
/// keep it set.
pub fn with_positions<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            WITH_POSITIONS.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(WITH_POSITIONS.with(|flag| flag.replace(true)));
    f()
}

fn positions_kept() -> bool {
    WITH_POSITIONS.with(|flag| flag.get())
}

#[derive(Serialize)]
struct PositionedRef<'a, T> {
    #[serde(rename = "$located")]
    marker: bool,
    value: &'a T,
    line: u64,
    column: u64,
    file: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Positioned<T> {
    #[serde(rename = "$located")]
    #[allow(dead_code)]
    marker: bool,
    value: T,
    line: u64,
    column: u64,
    file: Option<String>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if positions_kept() {
            let positioned = Positioned::<T>::deserialize(deserializer)?;
            return Ok(Located {
                value: positioned.value,
                line: positioned.line,
                column: positioned.column,
                file: positioned.file.map(Into::into),
            });
        }
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Located {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            file: None,
        })
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if positions_kept() {
            return PositionedRef {
                marker: true,
                value: &self.value,
                line: self.line,
                column: self.column,
                file: self.file.as_deref(),
            }
            .serialize(serializer);
        }
        self.value.serialize(serializer)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifests_send_whole_floats_as_integers_as_kubectl_does() {
        // `0800` is no octal number, so YAML 1.1 makes it the float 800; kubectl
        // sends floats through Go's encoding/json, which writes 800, and an int32
        // field takes it. `800.0` would be refused.
        let documents = super::documents("port: 0800\nreplicas: 2.0\nratio: 0.5\nbig: 1e300\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            serde_json::to_string(&documents).unwrap_or_default(),
            r#"[{"big":1e+300,"port":800,"ratio":0.5,"replicas":2}]"#
        );
    }

    #[test]
    fn manifests_read_zero_prefixed_integers_as_octal_as_kubectl_does() {
        let documents = super::documents("mode: 0644\nport: 8080\nname: \"0644\"\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            documents,
            vec![serde_json::json!({"mode": 420, "port": 8080, "name": "0644"})]
        );
    }

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: Located<String>,
    }

    #[test]
    fn located_records_line_and_column() {
        let sample: Sample = from_str("\n\nname:   hello\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sample.name.value, "hello");
        assert_eq!((sample.name.line, sample.name.column), (3, 9));
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let error = from_str::<Sample>("name: a\nnmae: b\n").err();
        let error = error.unwrap_or_else(|| panic!("expected an error"));
        assert!(error.message.contains("nmae"), "{error:?}");
        assert_eq!(error.line, Some(2), "{error:?}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Port {
        #[allow(dead_code)]
        port: i64,
    }

    #[test]
    fn a_zero_prefixed_number_in_a_profile_is_refused_naming_the_number_to_write() {
        // Not 64 (YAML 1.1 octal) and not silently 80: the profile says which.
        let error = from_str::<Port>("port: 0080\n").err();
        let error = error.unwrap_or_else(|| panic!("0080 was accepted"));
        assert_eq!(
            error.message,
            "`0080` has a leading zero, which YAML 1.1 readers take as octal; write `80`"
        );
        assert_eq!((error.line, error.column), (Some(1), Some(7)));
        let error = from_str::<Port>("{port: -007}").err();
        let error = error.unwrap_or_else(|| panic!("-007 was accepted"));
        assert!(error.message.ends_with("write `-7`"), "{error:?}");
        // A number out of range keeps the plain message.
        let error = from_str::<Port>("port: 99999999999999999999\n").err();
        let error = error.unwrap_or_else(|| panic!("an overflow was accepted"));
        assert_eq!(error.message, WHOLE_NUMBER);
        assert!(from_str::<Port>("port: 0\n").is_ok());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = (b'a' + i) as char;
            let next = (b'b' + i) as char;
            text.push_str(&format!(
                "{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        text.push_str("name: x\n");
        assert!(from_str::<Sample>(&text).is_err());
    }
}
