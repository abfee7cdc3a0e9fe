//! Figures without Python: line charts, histograms and the textbook's other
//! pictures drawn with `plotters` into an SVG and a PNG of the same layout.
//!
//! A [`Figure`] is a grid of [`Panel`]s; each panel holds line [`Series`]
//! (solid or dashed, with a legend), a histogram, or a list of [`Mark`]s
//! drawn in order: lines, points, contour lines of a sampled function
//! ([`Field`]), arrows, pictures (images, class regions), text and the nodes
//! of a graph. [`Figure::save`] writes `<stem>.svg` and `<stem>.png`.
//!
//! Text in the PNG is rasterised from DejaVu Sans, embedded in the binary
//! (`assets/fonts/`, Bitstream Vera license beside it), so figures look the
//! same on any machine and need no system fonts or fontconfig. The SVG names
//! the font family `sans-serif` and leaves rendering to the viewer.
//!
//! ```no_run
//! use backprop::plot::{Figure, Panel, Series};
//! let loss = Series::new("loss", vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.3)]);
//! let panel = Panel::lines("training", "epoch", "loss", vec![loss]);
//! Figure::new(vec![panel], 1).save("runs/demo".as_ref(), "curves").unwrap();
//! ```

mod contour;
mod marks;

pub use contour::Field;
pub use marks::{
    Anchor, Arrows, GREY, INK, Label, Mark, Marker, Node, Picture, Points, Rgb, Shape, palette,
};

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours of successive series (matplotlib's "tab10", which the textbook's
/// figures use).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const FONT: &str = "sans-serif";

/// A figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
}

/// One line: `(x, y)` points in order. Non-finite points (a diverged loss)
/// are left out.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Index into the palette; by default the series' position in its panel.
    pub color: Option<usize>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            dashed: false,
            color: None,
        }
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }
}

#[derive(Clone, Debug)]
pub enum Content {
    Lines(Vec<Series>),
    /// Equal-width bins spanning `range`.
    Histogram {
        range: Range<f64>,
        counts: Vec<u64>,
    },
    /// Marks drawn in order, the first at the bottom.
    Marks(Vec<Mark>),
}

/// One chart of a figure.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Axis ranges; `None` fits the data.
    pub x_range: Option<Range<f64>>,
    pub y_range: Option<Range<f64>>,
    pub content: Content,
    /// Draw the legend (line panels with labelled series).
    pub legend: bool,
    /// Which corner the legend sits in, so it can avoid the curves.
    pub legend_corner: Corner,
    /// Draw axes, ticks and grid (marks panels can turn them off).
    pub axes: bool,
    /// One data unit is as long across as up (marks panels): the ranges are
    /// widened to fit the panel's shape, so circles stay round and right
    /// angles stay right.
    pub equal_aspect: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
}

impl Panel {
    pub fn lines(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_range: None,
            y_range: None,
            content: Content::Lines(series),
            legend: true,
            legend_corner: Corner::UpperRight,
            axes: true,
            equal_aspect: false,
        }
    }

    /// A panel of [`Mark`]s, drawn in order.
    pub fn marks(title: &str, x_label: &str, y_label: &str, marks: Vec<Mark>) -> Self {
        Panel {
            content: Content::Marks(marks),
            ..Panel::lines(title, x_label, y_label, Vec::new())
        }
    }

    pub fn histogram(title: &str, x_label: &str, range: Range<f64>, counts: Vec<u64>) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: "count".into(),
            x_range: Some(range.clone()),
            y_range: None,
            content: Content::Histogram { range, counts },
            legend: false,
            legend_corner: Corner::UpperRight,
            axes: true,
            equal_aspect: false,
        }
    }

    pub fn x_range(mut self, r: Range<f64>) -> Self {
        self.x_range = Some(r);
        self
    }

    pub fn y_range(mut self, r: Range<f64>) -> Self {
        self.y_range = Some(r);
        self
    }

    pub fn legend(mut self, on: bool) -> Self {
        self.legend = on;
        self
    }

    pub fn legend_corner(mut self, corner: Corner) -> Self {
        self.legend_corner = corner;
        self
    }

    /// Leaves out axes, ticks and grid (a graph, a picture).
    pub fn no_axes(mut self) -> Self {
        self.axes = false;
        self
    }

    /// Scales both axes alike (see [`Panel::equal_aspect`]).
    pub fn equal_aspect(mut self) -> Self {
        self.equal_aspect = true;
        self
    }

    /// The data's extent on each axis, padded so lines do not sit on the frame.
    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let (xs, ys): (Vec<f64>, Vec<f64>) = match &self.content {
            Content::Lines(series) => series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .unzip(),
            Content::Histogram { range, counts } => (
                vec![range.start, range.end],
                vec![0.0, counts.iter().copied().max().unwrap_or(0) as f64],
            ),
            Content::Marks(marks) => marks
                .iter()
                .flat_map(|m| m.extent())
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .unzip(),
        };
        let fit = |v: &[f64], pad_low: bool| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                return 0.0..1.0;
            }
            if hi - lo < 1e-12 {
                return (lo - 0.5)..(hi + 0.5);
            }
            let pad = 0.05 * (hi - lo);
            (if pad_low { lo - pad } else { lo })..(hi + pad)
        };
        let x = self.x_range.clone().unwrap_or_else(|| fit(&xs, false));
        let y = self.y_range.clone().unwrap_or_else(|| {
            let histogram = matches!(self.content, Content::Histogram { .. });
            fit(&ys, !histogram)
        });
        (x, y)
    }
}

/// A grid of panels, filled row by row.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: Option<String>,
    pub panels: Vec<Panel>,
    pub columns: usize,
    /// Pixels per panel (width, height).
    pub panel_size: (u32, u32),
}

/// Height of the figure's title strip, when it has a title.
const TITLE_HEIGHT: u32 = 40;

impl Figure {
    pub fn new(panels: Vec<Panel>, columns: usize) -> Self {
        Figure {
            title: None,
            panels,
            columns: columns.max(1),
            panel_size: (640, 420),
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn panel_size(mut self, width: u32, height: u32) -> Self {
        self.panel_size = (width, height);
        self
    }

    pub fn rows(&self) -> usize {
        self.panels.len().div_ceil(self.columns).max(1)
    }

    /// The image size in pixels (the PNG's, and the SVG's view box).
    pub fn size(&self) -> (u32, u32) {
        let title = if self.title.is_some() {
            TITLE_HEIGHT
        } else {
            0
        };
        (
            self.panel_size.0 * self.columns as u32,
            self.panel_size.1 * self.rows() as u32 + title,
        )
    }

    /// Writes `dir/<stem>.svg` and `dir/<stem>.png`; returns their paths.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<[PathBuf; 2], PlotError> {
        register_font();
        let size = self.size();
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |e: Box<dyn std::error::Error>| PlotError {
                path: path.clone(),
                message: e.to_string(),
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir)(Box::new(e)))?;
        self.draw(SVGBackend::new(&svg, size).into_drawing_area())
            .map_err(fail(&svg))?;
        self.draw(BitMapBackend::new(&png, size).into_drawing_area())
            .map_err(fail(&png))?;
        Ok([svg, png])
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let body = match &self.title {
            Some(t) => {
                let (top, body) = root.split_vertically(TITLE_HEIGHT);
                top.draw(&Text::new(
                    t.as_str(),
                    (self.size().0 as i32 / 2, TITLE_HEIGHT as i32 / 2),
                    (FONT, 22)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
                body
            }
            None => root.clone(),
        };
        let areas = body.split_evenly((self.rows(), self.columns));
        for (panel, area) in self.panels.iter().zip(&areas) {
            match &panel.content {
                Content::Marks(marks) => marks::draw_panel(panel, marks, area)?,
                _ => draw_panel(panel, area)?,
            }
        }
        root.present()?;
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (xr, yr) = panel.ranges();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 17))
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(xr.clone(), yr.clone())?;
    draw_mesh(&mut chart, panel, &xr, &yr)?;
    match &panel.content {
        Content::Lines(series) => {
            let (x_range, y_range) = panel.ranges();
            for (i, s) in series.iter().enumerate() {
                draw_line(&mut chart, s, i, &x_range, &y_range)?;
            }
            if series.iter().any(|s| !s.label.is_empty()) {
                draw_legend(&mut chart, panel)?;
            }
        }
        Content::Marks(_) => unreachable!("marks panels are drawn by marks::draw_panel"),
        Content::Histogram { range, counts } => {
            let width = (range.end - range.start) / counts.len().max(1) as f64;
            let fill = PALETTE[0].filled();
            // A bar above a chosen y range is cut at its top (the textbook's
            // ReLU histograms cut the bar of zeros the same way).
            let top = panel.ranges().1.end;
            chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = range.start + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, (c as f64).min(top))], fill)
            }))?;
        }
    }
    Ok(())
}

/// Pixels around a chart, and for the tick labels and axis names.
const MARGIN: u32 = 8;
const MARGIN_RIGHT: u32 = 16;
const X_LABEL_AREA: u32 = 42;
const Y_LABEL_AREA: u32 = 62;

/// Axes, ticks, grid and axis names.
fn draw_mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    panel: &Panel,
    xr: &Range<f64>,
    yr: &Range<f64>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (x_ticks, y_ticks) = (tick_format(xr), tick_format(yr));
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&x_ticks)
        .y_label_formatter(&y_ticks)
        .draw()?;
    Ok(())
}

/// The chart of a panel: data coordinates on both axes.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws series `s` (the `index`-th of its panel, which picks its default
/// colour), cut where it leaves the axes.
fn draw_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    s: &Series,
    index: usize,
    x_range: &Range<f64>,
    y_range: &Range<f64>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let color = PALETTE[s.color.unwrap_or(index) % PALETTE.len()];
    let style = color.stroke_width(2);
    // plotters pins points outside the axes to the frame; cut the line at
    // the frame instead (the textbook's loss plots clip at y = 1 the same
    // way), and break it at non-finite points.
    let segments = clip(&s.points, x_range, y_range);
    let mut labelled = false;
    for segment in segments {
        let points = segment.iter().copied();
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points, 7, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        if !labelled && !s.label.is_empty() {
            labelled = true;
            let dashed = s.dashed;
            drawn.label(&s.label).legend(move |(x, y)| {
                let end = if dashed { x + 10 } else { x + 22 };
                PathElement::new(vec![(x, y), (end, y)], style)
            });
        }
    }
    Ok(())
}

/// The parts of the polyline `points` inside `x` by `y`: each segment cut
/// at the frame (Liang-Barsky), the line broken where it leaves the frame or
/// meets a non-finite point.
fn clip(points: &[(f64, f64)], x: &Range<f64>, y: &Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let mut parts: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let cut = (finite(&a) && finite(&b))
            .then(|| clip_segment(a, b, x, y))
            .flatten();
        match cut {
            Some((p, q)) => {
                if current.last() != Some(&p) {
                    if current.len() > 1 {
                        parts.push(std::mem::take(&mut current));
                    }
                    current.clear();
                    current.push(p);
                }
                current.push(q);
            }
            None => {
                if current.len() > 1 {
                    parts.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if current.len() > 1 {
        parts.push(current);
    }
    parts
}

/// The part of the segment `a`-`b` inside `x` by `y`, if any.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    x: &Range<f64>,
    y: &Range<f64>,
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x.start),
        (dx, x.end - a.0),
        (-dy, a.1 - y.start),
        (dy, y.end - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(t0), at(t1)))
}

/// The legend of the labelled series, in the panel's corner (if it has one).
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    panel: &Panel,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    if !panel.legend {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(match panel.legend_corner {
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        })
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Tick labels with as many decimals as the axis' span needs (about six
/// ticks), trailing zeros trimmed: epochs read `1, 2, 3`, not `1.0, 2.0`.
fn tick_format(range: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
    let step = (range.end - range.start) / 6.0;
    let decimals = if step > 0.0 {
        (-step.log10()).ceil().clamp(0.0, 8.0) as usize
    } else {
        2
    };
    move |v: &f64| {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s == "-0" { "0".to_string() } else { s }
    }
}

/// Makes the embedded DejaVu Sans the `sans-serif` family for PNG text.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, crate::font::DEJAVU_SANS)
            .is_err()
        {
            panic!("the embedded assets/fonts/DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Counts of `values` in `bins` equal bins over `range`; values outside the
/// range are not counted (the textbook's `plt.hist(..., range=(0, 1))`).
pub fn histogram(
    values: impl IntoIterator<Item = f64>,
    range: &Range<f64>,
    bins: usize,
) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let width = (range.end - range.start) / bins as f64;
    for v in values {
        if v >= range.start && v <= range.end {
            let i = (((v - range.start) / width) as usize).min(bins - 1);
            counts[i] += 1;
        }
    }
    counts
}

/// An exponential moving average, the smoothing for noisy per-iteration
/// losses: `s ← a·s + (1 - a)·v`, started at the first value.
pub fn smooth(values: &[f64], a: f64) -> Vec<f64> {
    let mut s = None;
    values
        .iter()
        .map(|&v| {
            let next = match s {
                None => v,
                Some(prev) => a * prev + (1.0 - a) * v,
            };
            s = Some(next);
            next
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    /// Decodes a PNG and returns its size; panics if it does not decode.
    pub fn png_size(path: &Path) -> (u32, u32) {
        let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (img.width(), img.height())
    }

    /// An SVG that starts like one and declares the figure's size.
    pub fn assert_svg(path: &Path, size: (u32, u32)) {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(
            svg.contains(&format!("width=\"{}\" height=\"{}\"", size.0, size.1)),
            "{}",
            &svg[..svg.len().min(200)]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn lines_and_histograms_render_to_decodable_files() {
        let dir = TempDir::new("plot");
        let lines = Panel::lines(
            "two lines",
            "epoch",
            "accuracy",
            vec![
                Series::new("train", vec![(1.0, 0.5), (2.0, 0.8), (3.0, f64::NAN)]),
                Series::new("test", vec![(1.0, 0.4), (2.0, 0.7)]).dashed(),
            ],
        );
        let hist = Panel::histogram("hist", "value", 0.0..1.0, vec![3, 5, 2]);
        let empty = Panel::lines("no data", "x", "y", vec![]);
        let figure = Figure::new(vec![lines, hist, empty], 2)
            .title("test figure")
            .panel_size(300, 200);
        assert_eq!(figure.size(), (600, 440));
        let [svg, png] = figure.save(dir.path(), "fig").unwrap();
        assert_eq!(png_size(&png), (600, 440));
        assert_svg(&svg, (600, 440));
        let svg = std::fs::read_to_string(&svg).unwrap();
        for text in [
            "test figure",
            "two lines",
            "epoch",
            "accuracy",
            "train",
            "test",
        ] {
            assert!(svg.contains(text), "no '{text}' in the SVG");
        }
    }

    /// Every kind of mark on one figure, written to `BACKPROP_PLOT_DEMO` when
    /// set (to look at it).
    #[test]
    fn every_mark_renders_into_both_files() {
        let dir = TempDir::new("plot-marks");
        let field = Field::sample(-2.0..2.0, -2.0..2.0, 41, 41, |x, y| x * x + y * y);
        let arrows = (-2..=2)
            .flat_map(|i| (-2..=2).map(move |j| (f64::from(i) * 0.8, f64::from(j) * 0.8)))
            .map(|(x, y)| [(x, y), (x - 0.2 * x, y - 0.2 * y)])
            .collect();
        let field_panel = Panel::marks(
            "contours, arrows, points",
            "x0",
            "x1",
            vec![
                Mark::Picture(Picture::regions(&[0, 1, 1, 2], 2, 2, -2.0..2.0, -2.0..2.0)),
                Mark::Contours {
                    field,
                    levels: vec![0.5, 1.0, 2.0, 3.0],
                },
                Mark::Arrows(Arrows::new(arrows, INK)),
                Mark::Points(Points::new("ones", vec![(1.0, 1.0)], palette(3))),
                Mark::Points(
                    Points::new("zeros", vec![(-1.0, 1.0)], palette(0)).marker(Marker::Hollow),
                ),
                Mark::Line(Series::new("path", vec![(-1.5, -1.5), (0.0, 0.0)])),
            ],
        )
        .equal_aspect();
        let graph = Panel::marks(
            "graph",
            "",
            "",
            vec![
                Mark::Node(Node::circle((0.0, 0.0), 1.0, "×")),
                Mark::Node(Node::boxed((5.0, 0.0), 2.0, 1.0, "Affine")),
                Mark::Arrows(Arrows::new(vec![[(1.0, 0.0), (3.0, 0.0)]], INK)),
                Mark::Text(Label::new((2.0, 0.0), "220", Anchor::Above)),
                Mark::Text(Label::new((2.0, 0.0), "1.1", Anchor::Below).color(palette(3))),
                Mark::Picture(Picture::grey(
                    &[0.0, 1.0, 2.0, 3.0],
                    2,
                    2,
                    true,
                    -1.0..0.0,
                    2.0..3.0,
                )),
            ],
        )
        .no_axes()
        .equal_aspect();
        let figure = Figure::new(vec![field_panel, graph], 2).panel_size(400, 360);
        let out = std::env::var_os("BACKPROP_PLOT_DEMO").map(PathBuf::from);
        let [svg, png] = figure
            .save(out.as_deref().unwrap_or(dir.path()), "marks")
            .unwrap();
        assert_eq!(png_size(&png), (800, 360));
        assert_svg(&svg, (800, 360));
        let svg = std::fs::read_to_string(&svg).unwrap();
        for text in [
            "contours, arrows, points",
            "Affine",
            "220",
            "ones",
            "<image",
        ] {
            assert!(svg.contains(text), "no '{text}' in the SVG");
        }
    }

    #[test]
    fn text_is_drawn_into_the_png() {
        // The same figure with and without a title: the title's pixels must
        // differ, which they do only if the embedded font rasterises.
        let dir = TempDir::new("plot-text");
        let panel = Panel::lines("", "x", "y", vec![Series::new("", vec![(0.0, 0.0)])]);
        let plain = Figure::new(vec![panel.clone()], 1).panel_size(200, 100);
        let titled = plain.clone().title("Title");
        plain.save(dir.path(), "plain").unwrap();
        titled.save(dir.path(), "titled").unwrap();
        let img = image::open(dir.path().join("titled.png"))
            .unwrap()
            .to_rgb8();
        let dark = (0..200)
            .flat_map(|x| (0..TITLE_HEIGHT).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 128))
            .count();
        assert!(dark > 20, "only {dark} dark pixels in the title strip");
    }

    #[test]
    fn lines_are_cut_at_the_frame_and_broken_at_gaps() {
        let (x, y) = (0.0..1.0, 0.0..1.0);
        // A line across the whole frame, corner to corner beyond it.
        assert_eq!(
            clip(&[(-1.0, -1.0), (2.0, 2.0)], &x, &y),
            [vec![(0.0, 0.0), (1.0, 1.0)]]
        );
        // Out through the top and back in: two pieces.
        let parts = clip(&[(0.0, 0.5), (0.5, 1.5), (1.0, 0.5)], &x, &y);
        assert_eq!(
            parts,
            [vec![(0.0, 0.5), (0.25, 1.0)], vec![(0.75, 1.0), (1.0, 0.5)]]
        );
        // A NaN breaks the line; a segment wholly outside is left out.
        let parts = clip(
            &[
                (0.1, 0.1),
                (0.2, 0.2),
                (f64::NAN, 0.5),
                (0.3, 0.3),
                (0.4, 0.4),
            ],
            &x,
            &y,
        );
        assert_eq!(parts.len(), 2);
        assert!(clip(&[(2.0, 2.0), (3.0, 3.0)], &x, &y).is_empty());
    }

    #[test]
    fn bad_output_folder_is_an_error_not_a_panic() {
        let dir = TempDir::new("plot-bad");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = Figure::new(vec![], 1).save(&file, "x").unwrap_err();
        assert!(err.to_string().starts_with("cannot draw"), "{err}");
    }

    #[test]
    fn histogram_and_smoothing() {
        let counts = histogram([0.0, 0.1, 0.5, 0.99, 1.0, 1.5, -0.1], &(0.0..1.0), 2);
        assert_eq!(counts, [2, 3]);
        assert_eq!(smooth(&[1.0, 3.0, 3.0], 0.5), [1.0, 2.0, 2.5]);
        let epochs = tick_format(&(1.0..20.0));
        assert_eq!((epochs(&5.0), epochs(&10.0)), ("5".into(), "10".into()));
        let accuracy = tick_format(&(0.8..1.0));
        assert_eq!(
            (accuracy(&0.85), accuracy(&0.9)),
            ("0.85".into(), "0.9".into())
        );
    }
}
