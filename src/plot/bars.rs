//! A bar chart: one bar per category, named below it, with an optional
//! range drawn as a whisker, a text above it, and a horizontal reference
//! line (what the bars are measured against).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FONT, MARGIN, MARGIN_RIGHT, PALETTE, Panel, X_LABEL_AREA, Y_LABEL_AREA, marks::Rgb, tick_format,
};

/// One bar of a [`Panel::bars`](super::Panel::bars) panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The category, written below the bar.
    pub label: String,
    pub value: f64,
    /// Lowest and highest value (of repeated measurements), as a whisker.
    pub spread: Option<Range<f64>>,
    /// Written above the bar (and its whisker).
    pub text: String,
    /// Index into the palette.
    pub color: usize,
}

/// A horizontal line across the bars at `value`, named at its right end.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub value: f64,
    pub label: String,
}

/// The bars' y range: from 0 to the highest bar, whisker or reference line,
/// with room above for the texts.
pub(super) fn y_range(bars: &[Bar], reference: Option<&Reference>) -> Range<f64> {
    let top = bars
        .iter()
        .flat_map(|b| [b.value, b.spread.as_ref().map_or(0.0, |s| s.end)])
        .chain(reference.map(|r| r.value))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    0.0..if top > 0.0 { top * 1.15 } else { 1.0 }
}

pub(super) fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    bars: &[Bar],
    reference: Option<&Reference>,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let yr = panel
        .y_range
        .clone()
        .unwrap_or_else(|| y_range(bars, reference));
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 17))
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, yr.clone())?;
    let y_ticks = tick_format(&yr);
    // Bar i stands at x = i; asked for at most n ticks over n units, plotters
    // puts them one unit apart, on the bars.
    let name = |x: &f64| {
        let i = x.round();
        match bars.get(i as usize) {
            Some(b) if (x - i).abs() < 1e-6 && i >= 0.0 => b.label.clone(),
            _ => String::new(),
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .x_labels(n)
        .y_labels(6)
        .x_label_formatter(&name)
        .y_label_formatter(&y_ticks)
        .draw()?;
    // Under the bars and their texts.
    if let Some(r) = reference {
        let grey: Rgb = super::GREY;
        let line = RGBColor(grey.0, grey.1, grey.2).stroke_width(2);
        let right = n as f64 - 0.5;
        chart.draw_series([PathElement::new(
            vec![(-0.5, r.value), (right, r.value)],
            line,
        )])?;
        let style = (FONT, 13)
            .into_font()
            .color(&RGBColor(90, 90, 90))
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        chart.draw_series([
            EmptyElement::at((right, r.value)) + Text::new(r.label.clone(), (-4, -3), style)
        ])?;
    }
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let (x, color) = (i as f64, PALETTE[b.color % PALETTE.len()]);
        Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, b.value.min(yr.end))],
            color.filled(),
        )
    }))?;
    let ink = BLACK.stroke_width(2);
    for (i, b) in bars.iter().enumerate() {
        let at = |y: f64| (i as f64, y);
        let mut top = b.value;
        if let Some(s) = &b.spread {
            chart.draw_series([PathElement::new(vec![at(s.start), at(s.end)], ink)])?;
            for y in [s.start, s.end] {
                chart.draw_series([
                    EmptyElement::at(at(y)) + PathElement::new(vec![(-6, 0), (6, 0)], ink)
                ])?;
            }
            top = top.max(s.end);
        }
        let style = (FONT, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series([
            EmptyElement::at(at(top.min(yr.end))) + Text::new(b.text.clone(), (0, -5), style)
        ])?;
    }
    Ok(())
}
