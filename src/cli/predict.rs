//! `backprop predict`: classifies pictures, or the rows of CSV files for a
//! table model, and prints each answer by class name.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::data::InputKind;
use crate::data::csv::read_rows;
use crate::predict::{Classifier, format_top, top};

#[derive(Args)]
pub struct PredictArgs {
    /// A model.safetensors written by `backprop train`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Pictures (PNG, JPEG, BMP) for a model of pictures, prepared as its training
    /// data was (a digit's: any size, dark on light or light on dark); CSV files of
    /// rows (a header, then one row per line) for a model of a table.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON: every answer's probabilities.
    #[arg(long)]
    pub json: bool,
}

/// What one picture or row got: its name and the probabilities, or why none.
struct Answer {
    file: PathBuf,
    /// The row's line in its file, for table models.
    line: Option<usize>,
    result: Result<Vec<f64>, String>,
}

pub fn run(a: PredictArgs) -> Result<()> {
    let classifier = Classifier::open(&a.model)?;
    let rows = matches!(
        classifier.info().input,
        InputKind::Table(_) | InputKind::Vectors
    );
    let mut answers = Vec::new();
    for file in &a.files {
        if rows {
            answers.extend(classify_rows(&classifier, file));
        } else {
            answers.push(Answer {
                file: file.clone(),
                line: None,
                result: classifier.classify_file(file).map_err(|e| e.to_string()),
            });
        }
    }
    let failed = answers.iter().filter(|a| a.result.is_err()).count();
    // One answer: its error is the command's, on the one `error:` line.
    if let [Answer { result: Err(e), .. }] = answers.as_slice()
        && !a.json
    {
        bail!("{e}");
    }
    let names = classifier.class_names();
    let mut json = Vec::new();
    for answer in &answers {
        let name = match answer.line {
            Some(line) => format!("{}:{line}", answer.file.display()),
            None => answer.file.display().to_string(),
        };
        match (&answer.result, a.json) {
            (Ok(p), false) => println!("{name}: {}", format_top(p, names, 3)),
            (Err(e), false) => eprintln!("{e}"),
            (result, true) => json.push(to_json(answer, result, names)),
        }
    }
    if a.json {
        println!("{}", Value::from(json));
    }
    if failed > 0 {
        let what = if rows {
            "row(s) or file(s)"
        } else {
            "image(s)"
        };
        bail!(
            "{failed} of {} {what} could not be classified",
            answers.len()
        );
    }
    Ok(())
}

fn to_json(answer: &Answer, result: &Result<Vec<f64>, String>, names: &[String]) -> Value {
    let mut j = json!({ "file": answer.file.display().to_string() });
    if let Some(line) = answer.line {
        j["row"] = line.into();
    }
    match result {
        Ok(p) => {
            let best = top(p, 3);
            j["prediction"] = best[0].0.into();
            j["class"] = names[best[0].0].clone().into();
            j["top"] = best
                .iter()
                .map(|&(k, probability)| {
                    json!({ "class": names[k], "index": k, "probability": probability })
                })
                .collect();
            j["probabilities"] = p.clone().into();
        }
        Err(e) => j["error"] = e.clone().into(),
    }
    j
}

/// The answers for every row of `file` (or one error for the file).
fn classify_rows(classifier: &Classifier, file: &Path) -> Vec<Answer> {
    let failed = |e: String| {
        vec![Answer {
            file: file.to_owned(),
            line: None,
            result: Err(e),
        }]
    };
    // A picture's name: the classifier says what it takes instead.
    if image::ImageFormat::from_path(file).is_ok() {
        return failed(
            classifier
                .classify_picture(file, &[])
                .expect_err("a table or vector model takes no pictures")
                .to_string(),
        );
    }
    let rows = match &classifier.info().input {
        InputKind::Table(encoding) => read_rows(file, encoding).map_err(|e| e.to_string()),
        _ => vector_rows(file, classifier.values()),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return failed(e),
    };
    rows.into_iter()
        .map(|row| {
            let values: Vec<&str> = row.values.iter().map(String::as_str).collect();
            Answer {
                file: file.to_owned(),
                line: Some(row.line),
                result: classifier
                    .classify_row(&values)
                    .map_err(|e| format!("{}: row {}: {e}", file.display(), row.line)),
            }
        })
        .collect()
}

/// A vector model's rows: `n` comma-separated numbers per line, no header.
fn vector_rows(file: &Path, n: usize) -> Result<Vec<crate::data::csv::Row>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let rows: Vec<crate::data::csv::Row> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| crate::data::csv::Row {
            line: i + 1,
            values: l.split(',').map(|v| v.trim().to_owned()).collect(),
        })
        .collect();
    if let Some(bad) = rows.iter().find(|r| r.values.len() != n) {
        return Err(format!(
            "{}: row {}: {} values, the model takes {n}",
            file.display(),
            bad.line,
            bad.values.len()
        ));
    }
    Ok(rows)
}
