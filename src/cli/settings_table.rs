//! README's configuration table against the command line: one row per
//! setting, its default as `--help` gives it, and for a number its range.
//! A missing, extra or different row fails.

use std::collections::BTreeMap;

use super::Cli;

/// Variables in the table that libraries read themselves, not our flags.
const READ_BY_LIBRARIES: [&str; 2] = ["RUST_LOG", "OTEL_SERVICE_NAME"];

/// A row of the table: its default and allowed cells.
struct Row {
    default: String,
    allowed: String,
}

/// The rows of the table that starts with `| variable | default |`.
fn readme_rows() -> BTreeMap<String, Row> {
    let readme = include_str!("../../README.md");
    let mut rows = BTreeMap::new();
    let table = readme
        .split("| variable | default | allowed | meaning |")
        .nth(1)
        .expect("README has the configuration table");
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let var = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_owned();
        let row = Row {
            default: cells[1].to_owned(),
            allowed: cells[2].to_owned(),
        };
        assert!(rows.insert(var.clone(), row).is_none(), "{var} twice");
    }
    rows
}

#[test]
fn readme_lists_every_setting_with_its_default_and_range() {
    let mut rows = readme_rows();
    let command = Cli::definition();
    let mut problems = Vec::new();
    for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
        let Some(var) = arg.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        let Some(row) = rows.remove(var) else {
            problems.push(format!("{var}: no row in README"));
            continue;
        };
        match arg.get_default_values() {
            [default] => {
                let expected = format!("`{}`", default.to_string_lossy());
                if row.default != expected {
                    problems.push(format!(
                        "{var}: README default {} != {expected}",
                        row.default
                    ));
                }
            }
            _ if row.default.starts_with('`') && row.default.ends_with('`') => {
                problems.push(format!(
                    "{var}: README gives default {}, clap none",
                    row.default
                ));
            }
            _ => {}
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        if let Some((_, range)) = help.rsplit_once('[')
            && let Some((min, max)) = range.strip_suffix(']').and_then(|r| r.split_once('-'))
            && [min, max].iter().all(|n| n.parse::<f64>().is_ok())
            && !row.allowed.starts_with(&format!("{min}–{max}"))
        {
            problems.push(format!(
                "{var}: README allows {}, --help [{min}-{max}]",
                row.allowed
            ));
        }
    }
    for var in rows.keys() {
        if !READ_BY_LIBRARIES.contains(&var.as_str()) {
            problems.push(format!("{var}: in README, but no such setting"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
