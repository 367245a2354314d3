//! A strict parser of the Prometheus text exposition format (0.0.4), so a test can both check
//! that `/metrics` is what a Prometheus server would accept and read one series' value. Strict on
//! purpose: it refuses what Prometheus would (a sample before its `# TYPE`, a family split in two,
//! bad escapes, histograms that are not cumulative), so a test that only wants a value still fails
//! on a broken exposition.

use std::collections::{BTreeMap, HashMap, HashSet};

pub type Labels = BTreeMap<String, String>;

/// A parsed exposition: the declared types, and every sample by name and label set.
pub struct Exposition {
    /// The `# TYPE` of each family.
    pub types: HashMap<String, String>,
    pub samples: HashMap<String, Vec<(Labels, f64)>>,
}

impl Exposition {
    /// Parses the text format strictly: `# HELP` and `# TYPE` once per family, before its samples;
    /// each family's samples together; valid names, label syntax and escapes; no duplicate series;
    /// histograms with cumulative buckets ending in `+Inf` equal to `_count`, and a `_sum`.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the exposition must end with a line feed".into());
        }
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helped: HashSet<String> = HashSet::new();
        let mut samples: HashMap<String, Vec<(Labels, f64)>> = HashMap::new();
        let mut finished_families: HashSet<String> = HashSet::new();
        let mut current_family: Option<String> = None;
        for (number, line) in text.lines().enumerate() {
            let at = |message: String| format!("line {}: {message}: {line:?}", number + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let (keyword, rest) = rest.split_once(' ').ok_or_else(|| at("a bare comment".into()))?;
                let (name, value) = rest.split_once(' ').ok_or_else(|| at("HELP/TYPE needs a name and text".into()))?;
                check_metric_name(name).map_err(at)?;
                if let Some(current) = current_family.replace(name.to_owned()) {
                    if current != name {
                        finished_families.insert(current);
                    }
                }
                if finished_families.contains(name) {
                    return Err(at("the family appears twice".into()));
                }
                match keyword {
                    "HELP" => {
                        check_escapes(value, false).map_err(at)?;
                        if !helped.insert(name.to_owned()) {
                            return Err(at("a second HELP".into()));
                        }
                    }
                    "TYPE" => {
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&value) {
                            return Err(at(format!("unknown type {value}")));
                        }
                        if samples.keys().any(|sample| family_of(sample, &types) == name) {
                            return Err(at("TYPE after samples".into()));
                        }
                        if types.insert(name.to_owned(), value.to_owned()).is_some() {
                            return Err(at("a second TYPE".into()));
                        }
                    }
                    _ => return Err(at("a comment that is neither HELP nor TYPE".into())),
                }
                continue;
            }
            if line.is_empty() {
                return Err(at("an empty line".into()));
            }
            let (name, labels, value) = parse_sample(line).map_err(at)?;
            let family = family_of(&name, &types);
            if !types.contains_key(&family) {
                return Err(at(format!("a sample of {family}, whose TYPE was not given")));
            }
            if current_family.as_deref() != Some(family.as_str()) {
                return Err(at("a sample away from its family".into()));
            }
            if types[&family] == "counter" && (value < 0.0 || name != family) {
                return Err(at("a counter sample must be the family's name with a value ≥ 0".into()));
            }
            let series = samples.entry(name.clone()).or_default();
            if series.iter().any(|(existing, _)| *existing == labels) {
                return Err(at("a duplicate series".into()));
            }
            series.push((labels, value));
        }
        let exposition = Exposition { types, samples };
        exposition.check_histograms()?;
        Ok(exposition)
    }

    fn check_histograms(&self) -> Result<(), String> {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut by_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for (labels, value) in self.samples.get(&format!("{family}_bucket")).into_iter().flatten() {
                let mut rest = labels.clone();
                let le = rest.remove("le").ok_or(format!("{family}_bucket without le"))?;
                let bound = parse_value(&le).map_err(|e| format!("{family}: le {e}"))?;
                by_series.entry(rest).or_default().push((bound, *value));
            }
            for (labels, buckets) in by_series {
                let mut previous: Option<(f64, f64)> = None;
                for &(bound, count) in &buckets {
                    if let Some((previous_bound, previous_count)) = previous {
                        if bound <= previous_bound || count < previous_count {
                            return Err(format!("{family}{labels:?}: buckets out of order or not cumulative"));
                        }
                    }
                    previous = Some((bound, count));
                }
                let (last_bound, last_count) = previous.ok_or(format!("{family}{labels:?}: no buckets"))?;
                if last_bound != f64::INFINITY {
                    return Err(format!("{family}{labels:?}: no +Inf bucket"));
                }
                let find = |suffix: &str| {
                    self.samples
                        .get(&format!("{family}{suffix}"))
                        .and_then(|series| series.iter().find(|(l, _)| *l == labels))
                        .map(|(_, value)| *value)
                };
                if find("_count") != Some(last_count) {
                    return Err(format!("{family}{labels:?}: _count differs from the +Inf bucket"));
                }
                if find("_sum").is_none() {
                    return Err(format!("{family}{labels:?}: no _sum"));
                }
            }
        }
        Ok(())
    }

    /// The value of the sample `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(name)?.iter().find(|(labels, _)| *labels == wanted).map(|(_, value)| *value)
    }

    /// The value of one series written as exposed (`name` or `name{label="value",...}`).
    pub fn sample(&self, series: &str) -> Option<f64> {
        let (name, labels, _) = parse_sample(&format!("{series} 0")).unwrap_or_else(|e| panic!("{series}: {e}"));
        self.samples.get(&name)?.iter().find(|(l, _)| *l == labels).map(|(_, value)| *value)
    }

    /// Every series of the sample `name`, with its labels.
    pub fn series_of(&self, name: &str) -> Vec<(Labels, f64)> {
        self.samples.get(name).cloned().unwrap_or_default()
    }
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` belong to it.
fn family_of(sample: &str, types: &HashMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if types.get(base).is_some_and(|kind| kind == "histogram" || kind == "summary") {
                return base.to_owned();
            }
        }
    }
    sample.to_owned()
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with("__") {
        Ok(())
    } else {
        Err(format!("bad label name {name:?}"))
    }
}

/// Only `\\` and `\n` (and `\"` in label values) may be escaped.
fn check_escapes(text: &str, quotes: bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quotes => {}
                other => return Err(format!("bad escape \\{other:?}")),
            }
        }
    }
    Ok(())
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// `name{label="value",...} value` (no timestamp: the server never sends one).
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            if let Some(&(index, '}')) = chars.peek() {
                rest = &after_brace[index + 1..];
                break;
            }
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            let equals = after_brace[start..].find('=').ok_or("a label without =")? + start;
            let label = &after_brace[start..equals];
            check_label_name(label)?;
            while chars.peek().is_some_and(|(i, _)| *i <= equals) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {label} has no quoted value"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape in a label value: {other:?}")),
                    },
                    Some((_, '\n')) => return Err("a raw line feed in a label value".into()),
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            match chars.peek() {
                Some((_, ',')) => {
                    chars.next();
                }
                Some((_, '}')) => {}
                _ => return Err("labels must be separated by commas".into()),
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("one space before the value")?;
    if value.contains(' ') {
        return Err("a timestamp or trailing text after the value".into());
    }
    Ok((name.to_owned(), labels, parse_value(value)?))
}
