//! Tables in CSV: a header row, then one example per row, read with the `csv`
//! crate (quoted fields, a UTF-8 byte-order mark, `;` or tab separators).
//!
//! One column is the label (`--label`, else the first called `label`,
//! `class`, `target` or `y`, else the last): its values, strings or whole
//! numbers, are the class names. Every other column becomes features:
//! numbers are standardised with the mean and standard deviation of the
//! training split, strings are one-hot encoded by the values the training
//! split has (a value seen only later encodes as all zeros). A string column
//! whose values all differ is an identifier and is left out, as are the
//! columns `--ignore` names. A table has no test split of its own: a share of
//! each class is held out ([`ReadOptions::test_split`](super::ReadOptions::test_split)).
//!
//! The [`TableEncoding`] (every column's statistics or values) goes into the
//! checkpoint, so that `eval`, `predict` and `serve` take raw rows.
//!
//! ```
//! use backprop::data::{self, DataSource, LoadOptions};
//! let dir = std::env::temp_dir().join(format!("doc-csv-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("iris.csv");
//! let mut text = String::from("length,width,species\n");
//! for i in 0..20 {
//!     text += &format!("{},{},setosa\n{},{},virginica\n", 1.0 + i as f64 / 40.0, 0.2, 5.0 + i as f64 / 20.0, 2.0);
//! }
//! std::fs::write(&file, text).unwrap();
//! let split = data::load(DataSource::Csv(file), &LoadOptions::default()).unwrap();
//! assert_eq!(split.train.class_names, ["setosa", "virginica"]);
//! assert_eq!((split.train.len(), split.test.len(), split.train.dim()), (32, 8, 2));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{DataError, Dataset, Features, InputKind, LoadOptions, MAX_CLASSES, Split};

/// Column names taken for the label when `--label` does not say.
const LABEL_NAMES: [&str; 4] = ["label", "class", "target", "y"];

/// Why a column `--ignore` named is left out.
const IGNORED_BY_CHOICE: &str = "--ignore";

/// Most distinct values a one-hot column may have.
pub const MAX_CATEGORIES: usize = 10_000;

/// How every column of a table becomes features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableEncoding {
    /// The header's columns, in order, the label's among them.
    pub columns: Vec<Column>,
    /// The field separator.
    pub delimiter: char,
}

/// One column and how it is encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub encoding: Encoding,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "kebab-case")]
pub enum Encoding {
    /// The class of the row.
    Label,
    /// `(x - mean) / std`, with the training split's mean and standard
    /// deviation (1 where all values are equal).
    Numeric { mean: f64, std: f64 },
    /// One feature per value the training split has: 1 for the row's, 0 else.
    OneHot { values: Vec<String> },
    /// Left out (an identifier, or `--ignore`).
    Ignored { reason: String },
}

impl TableEncoding {
    /// Features per row.
    pub fn width(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match &c.encoding {
                Encoding::Numeric { .. } => 1,
                Encoding::OneHot { values } => values.len(),
                Encoding::Label | Encoding::Ignored { .. } => 0,
            })
            .sum()
    }

    /// The columns a row to classify has: all but the label, in order.
    pub fn input_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| !matches!(c.encoding, Encoding::Label))
    }

    /// The columns `--ignore` left out.
    pub fn ignored_by_choice(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter_map(|c| match &c.encoding {
            Encoding::Ignored { reason } if reason == IGNORED_BY_CHOICE => Some(c.name.as_str()),
            _ => None,
        })
    }

    /// The label column's name.
    pub fn label(&self) -> &str {
        self.columns
            .iter()
            .find(|c| matches!(c.encoding, Encoding::Label))
            .map_or("", |c| c.name.as_str())
    }

    /// Encodes one row given as the values of [`TableEncoding::input_columns`]
    /// (the raw row without its label), appending [`TableEncoding::width`]
    /// features to `out`. The error names the column.
    pub fn encode(&self, values: &[&str], out: &mut Vec<f32>) -> Result<(), String> {
        let columns: Vec<&Column> = self.input_columns().collect();
        if values.len() != columns.len() {
            return Err(format!(
                "expected {} values (the columns {}), found {}",
                columns.len(),
                names(&columns),
                values.len()
            ));
        }
        for (column, raw) in columns.iter().zip(values) {
            let raw = raw.trim();
            match &column.encoding {
                Encoding::Numeric { mean, std } => {
                    let v: f64 = raw.parse().map_err(|_| {
                        format!("column {:?}: {raw:?} is not a number", column.name)
                    })?;
                    out.push(((v - mean) / std) as f32);
                }
                Encoding::OneHot { values } => {
                    let hot = values.iter().position(|v| v == raw);
                    out.extend((0..values.len()).map(|i| f32::from(u8::from(Some(i) == hot))));
                }
                Encoding::Label | Encoding::Ignored { .. } => {}
            }
        }
        Ok(())
    }

    /// Maps the header of a file of rows to classify onto
    /// [`TableEncoding::input_columns`]: for each input column, its position
    /// in `header`. The label may be there or not; any other column must be.
    pub fn positions(&self, header: &[&str]) -> Result<Vec<usize>, String> {
        let columns: Vec<&Column> = self.input_columns().collect();
        let known = |h: &str| h == self.label() || columns.iter().any(|c| c.name == h);
        if let Some(extra) = header.iter().find(|h| !known(h)) {
            return Err(format!(
                "column {extra:?} is not one the model was trained on ({})",
                names(&columns)
            ));
        }
        columns
            .iter()
            .map(|c| {
                header.iter().position(|h| *h == c.name).ok_or_else(|| {
                    format!(
                        "the model needs column {:?}, which the header lacks",
                        c.name
                    )
                })
            })
            .collect()
    }
}

fn names(columns: &[&Column]) -> String {
    let n: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    n.join(", ")
}

/// Reads the table `file`; see the module's documentation.
pub fn load(file: &Path, opts: &LoadOptions) -> Result<Split, DataError> {
    let table_err = |at: Option<String>, reason: String| DataError::Table {
        path: file.to_path_buf(),
        at,
        reason,
    };
    let bytes = std::fs::read(file).map_err(|err| DataError::Io {
        path: file.to_path_buf(),
        err,
    })?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let tsv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = match opts.read.delimiter {
        Some(d) if d.is_ascii() => d as u8,
        Some(d) => {
            return Err(table_err(
                None,
                format!(
                    "the separator must be one ASCII character such as , ; or a tab, got {d:?}"
                ),
            ));
        }
        None if tsv => b'\t',
        None => b',',
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .from_reader(text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| table_err(None, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(table_err(
            None,
            "it is empty: expected a header row naming the columns, then one example per row"
                .into(),
        ));
    }
    let mut rows: Vec<::csv::StringRecord> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let row = e.position().map(|p| p.line());
            let reason = match e.kind() {
                ::csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!(
                    "{len} fields where the header has {expected_len}; quote fields that hold \
                     the separator {:?}",
                    char::from(delimiter)
                ),
                _ => e.to_string(),
            };
            table_err(row.map(|r| format!("row {r}")), reason)
        })?;
        rows.push(record);
    }
    if rows.is_empty() {
        return Err(table_err(
            None,
            "it has a header but no rows: expected one example per row after it".into(),
        ));
    }
    let at = |row: usize, col: usize| {
        // Rows as a spreadsheet numbers them: the header is row 1.
        Some(format!(
            "row {}, column {} ({})",
            row + 2,
            col + 1,
            header[col]
        ))
    };

    let label = match &opts.read.label {
        Some(l) => header.iter().position(|h| h == l).ok_or_else(|| {
            table_err(
                None,
                format!(
                    "no column called {l:?} for --label; the columns are {}",
                    header.join(", ")
                ),
            )
        })?,
        None => LABEL_NAMES
            .iter()
            .find_map(|n| header.iter().position(|h| h.eq_ignore_ascii_case(n)))
            .unwrap_or(header.len() - 1),
    };
    for name in &opts.read.ignore {
        if !header.contains(name) {
            return Err(table_err(
                None,
                format!(
                    "no column called {name:?} for --ignore; the columns are {}",
                    header.join(", ")
                ),
            ));
        }
    }
    let cell = |row: usize, col: usize| -> Result<&str, DataError> {
        let v = rows[row].get(col).unwrap_or("");
        if v.is_empty() {
            return Err(table_err(
                at(row, col),
                "the cell is empty; fill it in, or --ignore the column".into(),
            ));
        }
        Ok(v)
    };

    // Classes: whole numbers in numeric order, other names in text order.
    let raw_labels: Vec<&str> = (0..rows.len())
        .map(|r| cell(r, label))
        .collect::<Result<_, _>>()?;
    let mut class_names: Vec<String> = raw_labels
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if class_names.iter().all(|c| c.parse::<i64>().is_ok()) {
        class_names.sort_by_key(|c| c.parse::<i64>().unwrap_or_default());
    }
    if class_names.len() > MAX_CLASSES {
        return Err(DataError::TooManyClasses {
            source_name: file.display().to_string(),
            count: class_names.len(),
        });
    }
    let labels: Vec<u16> = raw_labels
        .iter()
        .map(|l| class_names.iter().position(|c| c == l).expect("a class") as u16)
        .collect();

    // The test rows are held out before any statistic is taken.
    let name = file.file_stem().map_or_else(
        || file.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let (train_rows, test_rows) =
        super::split::stratified(&labels, class_names.len(), opts.read.test_split, opts.seed)
            .map_err(|(class, count)| DataError::TooFewToSplit {
                source_name: file.display().to_string(),
                class: class_names[class].clone(),
                count,
                what: format!("{}% as the test set", opts.read.test_split * 100.0),
                flag: "test-split",
            })?;
    if test_rows.is_empty() {
        return Err(table_err(
            None,
            "a table has no test split of its own: --test-split must hold some rows out".into(),
        ));
    }

    let mut notes = vec![format!(
        "{} has no test split: {} of its {} rows ({}% of each class, seed {}) are the test set",
        file.display(),
        test_rows.len(),
        rows.len(),
        opts.read.test_split * 100.0,
        opts.seed
    )];
    let mut columns = Vec::with_capacity(header.len());
    for (col, column_name) in header.iter().enumerate() {
        let encoding = if col == label {
            Encoding::Label
        } else if opts.read.ignore.contains(column_name) {
            Encoding::Ignored {
                reason: IGNORED_BY_CHOICE.into(),
            }
        } else {
            let values: Vec<&str> = (0..rows.len())
                .map(|r| cell(r, col))
                .collect::<Result<_, _>>()?;
            let numbers: Vec<Option<f64>> = values.iter().map(|v| v.parse().ok()).collect();
            let numeric = numbers.iter().filter(|n| n.is_some()).count();
            if numeric == values.len() {
                let train: Vec<f64> = train_rows
                    .iter()
                    .map(|&r| numbers[r].unwrap_or(0.0))
                    .collect();
                let mean = train.iter().sum::<f64>() / train.len() as f64;
                let var =
                    train.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / train.len() as f64;
                let std = if var > 0.0 && var.is_finite() {
                    var.sqrt()
                } else {
                    1.0
                };
                Encoding::Numeric { mean, std }
            } else if 2 * numeric >= values.len() {
                // Mostly numbers: the odd one out is a mistake in the data.
                let row = numbers
                    .iter()
                    .position(Option::is_none)
                    .expect("a non-number");
                return Err(table_err(
                    at(row, col),
                    format!(
                        "{:?} is not a number, but the column's other values are; fix the cell, \
                         or --ignore the column",
                        values[row]
                    ),
                ));
            } else {
                let distinct: BTreeSet<&str> = train_rows.iter().map(|&r| values[r]).collect();
                if distinct.len() == train_rows.len() && train_rows.len() > 1 {
                    notes.push(format!(
                        "left out column {column_name:?}: its values all differ (an identifier); \
                         --ignore leaves out others"
                    ));
                    Encoding::Ignored {
                        reason: "its values all differ (an identifier)".into(),
                    }
                } else if distinct.len() > MAX_CATEGORIES {
                    return Err(table_err(
                        Some(format!("column {} ({column_name})", col + 1)),
                        format!(
                            "{} distinct values to one-hot encode, more than {MAX_CATEGORIES}; \
                             --ignore the column or group its values",
                            distinct.len()
                        ),
                    ));
                } else {
                    Encoding::OneHot {
                        values: distinct.into_iter().map(str::to_owned).collect(),
                    }
                }
            }
        };
        columns.push(Column {
            name: column_name.clone(),
            encoding,
        });
    }
    let encoding = TableEncoding {
        columns,
        delimiter: char::from(delimiter),
    };
    if encoding.width() == 0 {
        return Err(table_err(
            None,
            "no column is left to learn from besides the label".into(),
        ));
    }

    let part = |indices: &[usize]| -> Result<Dataset, DataError> {
        let mut features = Vec::with_capacity(indices.len() * encoding.width());
        for &r in indices {
            let values: Vec<&str> = (0..header.len())
                .filter(|&c| c != label)
                .map(|c| rows[r].get(c).unwrap_or(""))
                .collect();
            encoding
                .encode(&values, &mut features)
                .map_err(|reason| table_err(Some(format!("row {}", r + 2)), reason))?;
        }
        Ok(Dataset {
            name: name.clone(),
            features: Features::Dense(features),
            labels: indices.iter().map(|&r| labels[r]).collect(),
            class_names: class_names.clone(),
            shape: [1, 1, encoding.width()],
            input: InputKind::Table(encoding.clone()),
        })
    };
    Ok(Split {
        train: part(&train_rows)?,
        validation: None,
        test: part(&test_rows)?,
        notes,
    })
}

/// One row of a file to classify: its line (the header is 1) and the values of
/// the model's input columns, in their order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: usize,
    pub values: Vec<String>,
}

/// Whether `bytes` start as a picture file does (PNG, JPEG, GIF, BMP, WebP or
/// TIFF): the usual mistake when a picture model's file meets a table model,
/// told apart without an image decoder in the library's core.
fn is_picture(bytes: &[u8]) -> bool {
    const MAGIC: [&[u8]; 7] = [
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF",
        b"GIF87a",
        b"GIF89a",
        b"BM",
        b"II*\0",
        b"MM\0*",
    ];
    MAGIC.iter().any(|m| bytes.starts_with(m))
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
}

/// The rows of `file` (a header, then rows, as the training table), mapped
/// onto `encoding`'s input columns by name: the label column may be there or
/// not, every other column the model was trained on must be, and no other.
pub fn read_rows(file: &Path, encoding: &TableEncoding) -> Result<Vec<Row>, DataError> {
    let table_err = |at: Option<String>, reason: String| DataError::Table {
        path: file.to_path_buf(),
        at,
        reason,
    };
    let bytes = std::fs::read(file).map_err(|err| DataError::Io {
        path: file.to_path_buf(),
        err,
    })?;
    if is_picture(&bytes) {
        return Err(table_err(
            None,
            "it is a picture, but the model takes table rows: give it a CSV file with a header \
             row and the columns it was trained on"
                .into(),
        ));
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(encoding.delimiter as u8)
        .trim(::csv::Trim::All)
        .from_reader(text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| table_err(None, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    let positions = encoding
        .positions(&names)
        .map_err(|reason| table_err(Some("row 1 (the header)".into()), reason))?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let row = e.position().map(|p| format!("row {}", p.line()));
            let reason = match e.kind() {
                ::csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("{len} fields where the header has {expected_len}"),
                _ => e.to_string(),
            };
            table_err(row, reason)
        })?;
        let line = record
            .position()
            .map_or(rows.len() + 2, |p| p.line() as usize);
        rows.push(Row {
            line,
            values: positions
                .iter()
                .map(|&i| record.get(i).unwrap_or("").to_owned())
                .collect(),
        });
    }
    if rows.is_empty() {
        return Err(table_err(
            None,
            "it has a header but no rows to classify".into(),
        ));
    }
    Ok(rows)
}
