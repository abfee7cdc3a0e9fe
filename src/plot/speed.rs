//! The chart of a PyTorch comparison (`benches/pytorch/compare`, written by
//! `backprop bench chart`): per workload, backprop's speed as a multiple of
//! PyTorch's, the median of the rounds with their range as a whisker, and a
//! line at 1 (PyTorch).

use crate::bench::results::Comparison;

use super::{Bar, Figure, Panel, Reference};

/// The figure of `results`, titled with the machine, the date and the load.
pub fn speed_chart(results: &Comparison) -> Figure {
    let bars = results
        .workloads
        .iter()
        .map(|w| Bar {
            label: w.workload.to_uppercase().replace("-ADAM", "-adam"),
            value: w.speedup,
            spread: (results.rounds > 1).then_some(w.speedup_min..w.speedup_max),
            text: format!("{:.2}x", w.speedup),
            // Blue where backprop is faster, orange where it is slower.
            color: usize::from(w.speedup < 1.0),
        })
        .collect();
    let m = &results.machine;
    let cores = m.cores.map_or(String::new(), |c| format!(", {c} cores"));
    let panel = Panel::bars(
        &format!(
            "{}{cores}, {} threads, {}; other processes: {:.2} cores",
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.threads,
            results.date.get(..10).unwrap_or(&results.date),
            results.load.other_cores_mean
        ),
        "workload (benches/README.md)",
        &if results.rounds == 1 {
            "speed relative to PyTorch (x), one round".to_string()
        } else {
            format!(
                "speed relative to PyTorch (x), median and range of {} rounds",
                results.rounds
            )
        },
        bars,
        Some(Reference {
            value: 1.0,
            label: "PyTorch".into(),
        }),
    );
    Figure::new(vec![panel], 1)
        .title(format!("backprop against PyTorch {} on the CPU", m.torch))
        .panel_size(760, 440)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::{read, tests::SMALL};
    use crate::data::testutil::TempDir;
    use crate::plot::tests::{assert_svg, png_size};

    #[test]
    fn chart_of_a_results_file_is_drawn_at_its_size() {
        let dir = TempDir::new("speed-chart");
        let path = dir.path().join("2026-12-02.json");
        std::fs::write(&path, SMALL).unwrap();
        let figure = speed_chart(&read(&path).unwrap());
        assert_eq!(figure.size(), (760, 480));
        let [svg, png] = figure.save(dir.path(), "2026-12-02").unwrap();
        assert_eq!(png_size(&png), (760, 480));
        assert_svg(&svg, (760, 480));
        let svg = std::fs::read_to_string(&svg).unwrap();
        for text in [
            "W1",
            "W5",
            "4.00x",
            "0.75x",
            "PyTorch 2.15.0+cpu",
            "AMD EPYC",
        ] {
            assert!(svg.contains(text), "no '{text}' in the SVG");
        }
    }
}
