//! What a [`Panel::marks`](super::Panel::marks) panel draws, in order, over
//! one pair of axes: lines, points, contour lines, arrows, class regions,
//! pictures, text, and the nodes of a graph.
//!
//! Positions are in the panel's data coordinates. Sizes that must not stretch
//! with the axes (markers, arrowheads, text) are in pixels; a node's size is
//! in data units, so a graph can be laid out in one coordinate system (draw
//! it on a panel with [`Panel::equal_aspect`](super::Panel::equal_aspect) to
//! keep circles round).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FONT, Field, MARGIN, MARGIN_RIGHT, PALETTE, Panel, Series, X_LABEL_AREA, Y_LABEL_AREA,
    draw_legend, draw_line, draw_mesh,
};

/// A colour as red, green, blue.
pub type Rgb = (u8, u8, u8);

/// Black, for text and lines.
pub const INK: Rgb = (0, 0, 0);
pub const GREY: Rgb = (150, 150, 150);

/// Colour `i` of the palette (matplotlib's tab10, as the line series use).
pub fn palette(i: usize) -> Rgb {
    let c = PALETTE[i % PALETTE.len()];
    (c.0, c.1, c.2)
}

/// One thing drawn on a panel.
#[derive(Clone, Debug)]
pub enum Mark {
    /// A line, as in a line panel (legend entry if labelled).
    Line(Series),
    /// Markers at points (legend entry if labelled).
    Points(Points),
    /// Lines where the field equals each level, in thin grey.
    Contours { field: Field, levels: Vec<f64> },
    /// Arrows, each from its first point to its second, head at the second.
    Arrows(Arrows),
    /// A picture stretched over a rectangle (images, class regions).
    Picture(Picture),
    /// A line of text.
    Text(Label),
    /// A graph's node: a circle or box with a label inside.
    Node(Node),
}

/// How markers look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Filled,
    Hollow,
    Cross,
}

#[derive(Clone, Debug)]
pub struct Points {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: Rgb,
    pub marker: Marker,
    /// Radius in pixels.
    pub size: u32,
}

impl Points {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: Rgb) -> Self {
        Points {
            label: label.into(),
            points,
            color,
            marker: Marker::Filled,
            size: 4,
        }
    }

    pub fn marker(mut self, marker: Marker) -> Self {
        self.marker = marker;
        self
    }

    pub fn size(mut self, pixels: u32) -> Self {
        self.size = pixels;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Arrows {
    pub arrows: Vec<[(f64, f64); 2]>,
    pub color: Rgb,
    /// Length of the head in pixels.
    pub head: f64,
    /// Line width in pixels.
    pub width: u32,
}

impl Arrows {
    pub fn new(arrows: Vec<[(f64, f64); 2]>, color: Rgb) -> Self {
        Arrows {
            arrows,
            color,
            head: 7.0,
            width: 1,
        }
    }

    pub fn head(mut self, pixels: f64) -> Self {
        self.head = pixels;
        self
    }

    pub fn width(mut self, pixels: u32) -> Self {
        self.width = pixels;
        self
    }
}

/// An RGB picture of `width` by `height` pixels, row 0 at the top, stretched
/// over `x` by `y` in data coordinates (nearest neighbour, so pixels stay
/// sharp).
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub width: usize,
    pub height: usize,
    /// `width * height` pixels, row-major from the top left.
    pub pixels: Vec<Rgb>,
}

impl Picture {
    /// `values` (row-major, row 0 at the top) in grey, scaled from their
    /// smallest to their largest value: dark for large values (matplotlib's
    /// `gray_r`, the textbook's map for filters) if `dark_high`, else light
    /// (`gray`). Constant values are mid-grey.
    pub fn grey(
        values: &[f64],
        width: usize,
        height: usize,
        dark_high: bool,
        x: Range<f64>,
        y: Range<f64>,
    ) -> Picture {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let pixels = values
            .iter()
            .map(|&v| {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                let t = if dark_high { 1.0 - t } else { t };
                let g = (255.0 * t).round() as u8;
                (g, g, g)
            })
            .collect();
        Picture {
            x,
            y,
            width,
            height,
            pixels,
        }
    }

    /// Class regions: each cell of an `nx` by `ny` grid over `x` by `y`
    /// (row 0 at `y.start`, as a [`Field`]) in a pale palette colour of its
    /// class.
    pub fn regions(
        classes: &[usize],
        nx: usize,
        ny: usize,
        x: Range<f64>,
        y: Range<f64>,
    ) -> Picture {
        let pale = |c: usize| {
            let (r, g, b) = palette(c);
            let mix = |v: u8| (255.0 - 0.3 * (255.0 - f64::from(v))).round() as u8;
            (mix(r), mix(g), mix(b))
        };
        let pixels = (0..ny)
            .rev()
            .flat_map(|j| (0..nx).map(move |i| j * nx + i))
            .map(|k| pale(classes[k]))
            .collect();
        Picture {
            x,
            y,
            width: nx,
            height: ny,
            pixels,
        }
    }

    /// The picture resampled (nearest neighbour) to `w` by `h` pixels, as
    /// packed RGB bytes.
    pub(super) fn resampled(&self, w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity((w * h * 3) as usize);
        for py in 0..h as usize {
            let sy = (py * self.height / h as usize).min(self.height - 1);
            for px in 0..w as usize {
                let sx = (px * self.width / w as usize).min(self.width - 1);
                let (r, g, b) = self.pixels[sy * self.width + sx];
                out.extend([r, g, b]);
            }
        }
        out
    }
}

/// Where a label sits relative to its point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Center,
    /// Above the point, centred.
    Above,
    /// Below the point, centred.
    Below,
    /// Left of the point, its end at the point.
    Left,
    /// Right of the point, starting at the point.
    Right,
}

#[derive(Clone, Debug)]
pub struct Label {
    pub at: (f64, f64),
    pub text: String,
    pub color: Rgb,
    /// Font size in pixels.
    pub size: u32,
    pub anchor: Anchor,
}

impl Label {
    pub fn new(at: (f64, f64), text: impl Into<String>, anchor: Anchor) -> Self {
        Label {
            at,
            text: text.into(),
            color: INK,
            size: 14,
            anchor,
        }
    }

    pub fn color(mut self, color: Rgb) -> Self {
        self.color = color;
        self
    }

    pub fn size(mut self, pixels: u32) -> Self {
        self.size = pixels;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// A circle of this radius.
    Circle { radius: f64 },
    /// A box of this half-width and half-height.
    Box { half_width: f64, half_height: f64 },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub at: (f64, f64),
    pub label: String,
    /// Size in data units.
    pub shape: Shape,
}

impl Node {
    pub fn circle(at: (f64, f64), radius: f64, label: impl Into<String>) -> Self {
        Node {
            at,
            label: label.into(),
            shape: Shape::Circle { radius },
        }
    }

    pub fn boxed(
        at: (f64, f64),
        half_width: f64,
        half_height: f64,
        label: impl Into<String>,
    ) -> Self {
        Node {
            at,
            label: label.into(),
            shape: Shape::Box {
                half_width,
                half_height,
            },
        }
    }

    /// Where a line from the centre towards `to` leaves the node, so edges
    /// can end at its outline instead of its centre.
    pub fn boundary_towards(&self, to: (f64, f64)) -> (f64, f64) {
        let (dx, dy) = (to.0 - self.at.0, to.1 - self.at.1);
        let len = dx.hypot(dy);
        if len == 0.0 {
            return self.at;
        }
        let t = match self.shape {
            Shape::Circle { radius } => radius / len,
            Shape::Box {
                half_width,
                half_height,
            } => {
                let tx = if dx != 0.0 {
                    half_width / dx.abs()
                } else {
                    f64::INFINITY
                };
                let ty = if dy != 0.0 {
                    half_height / dy.abs()
                } else {
                    f64::INFINITY
                };
                tx.min(ty)
            }
        };
        (self.at.0 + t * dx, self.at.1 + t * dy)
    }
}

impl Mark {
    /// The points that the axes must show when they fit the data.
    pub(super) fn extent(&self) -> Vec<(f64, f64)> {
        match self {
            Mark::Line(s) => s.points.clone(),
            Mark::Points(p) => p.points.clone(),
            Mark::Contours { field, .. } => {
                vec![(field.x.start, field.y.start), (field.x.end, field.y.end)]
            }
            Mark::Arrows(a) => a.arrows.iter().flatten().copied().collect(),
            Mark::Picture(p) => vec![(p.x.start, p.y.start), (p.x.end, p.y.end)],
            Mark::Text(l) => vec![l.at],
            Mark::Node(n) => {
                let (hw, hh) = match n.shape {
                    Shape::Circle { radius } => (radius, radius),
                    Shape::Box {
                        half_width,
                        half_height,
                    } => (half_width, half_height),
                };
                vec![(n.at.0 - hw, n.at.1 - hh), (n.at.0 + hw, n.at.1 + hh)]
            }
        }
    }
}

fn color((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// `range` widened about its centre to `span`.
fn widened(range: &Range<f64>, span: f64) -> Range<f64> {
    let centre = (range.start + range.end) / 2.0;
    (centre - span / 2.0)..(centre + span / 2.0)
}

/// Draws a panel of marks on `area`: title, axes (unless turned off), the
/// marks in order, and a legend of the labelled lines and points.
pub(super) fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    marks: &[Mark],
    area: &DrawingArea<DB, Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let body = if panel.title.is_empty() {
        area.clone()
    } else {
        let (top, body) = area.split_vertically(TITLE_HEIGHT);
        let centre = (top.dim_in_pixel().0 as i32 / 2, TITLE_HEIGHT as i32 / 2 + 2);
        top.draw(&Text::new(
            panel.title.as_str(),
            centre,
            (FONT, 17)
                .into_font()
                .color(&BLACK_STYLE)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        body
    };
    let (margin, right, x_area, y_area) = if panel.axes {
        (MARGIN, MARGIN_RIGHT, X_LABEL_AREA, Y_LABEL_AREA)
    } else {
        (4, 4, 0, 0)
    };
    let (mut xr, mut yr) = panel.ranges();
    if panel.equal_aspect {
        let (w, h) = body.dim_in_pixel();
        let pw = f64::from(w.saturating_sub(margin + right + y_area).max(1));
        let ph = f64::from(h.saturating_sub(2 * margin + x_area).max(1));
        let per_pixel = ((xr.end - xr.start) / pw).max((yr.end - yr.start) / ph);
        xr = widened(&xr, per_pixel * pw);
        yr = widened(&yr, per_pixel * ph);
    }
    let mut chart = ChartBuilder::on(&body)
        .margin(margin)
        .margin_right(right)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(xr.clone(), yr.clone())?;
    if panel.axes {
        draw_mesh(&mut chart, panel, &xr, &yr)?;
    }
    // Pixels per data unit on each axis, for sizes given in pixels.
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let sx = f64::from(pw) / (xr.end - xr.start);
    let sy = f64::from(ph) / (yr.end - yr.start);
    let inside =
        |&(x, y): &(f64, f64)| xr.start <= x && x <= xr.end && yr.start <= y && y <= yr.end;
    let mut labelled = false;
    for (i, mark) in marks.iter().enumerate() {
        match mark {
            Mark::Line(s) => {
                draw_line(&mut chart, s, i, &xr, &yr)?;
                labelled |= !s.label.is_empty();
            }
            Mark::Points(p) => {
                let c = color(p.color);
                let (size, marker) = (p.size, p.marker);
                let shape = move |at: (f64, f64)| -> DynElement<'static, DB, (f64, f64)> {
                    match marker {
                        Marker::Filled => Circle::new(at, size, c.filled()).into_dyn(),
                        Marker::Hollow => Circle::new(at, size, c.stroke_width(2)).into_dyn(),
                        Marker::Cross => Cross::new(at, size, c.stroke_width(2)).into_dyn(),
                    }
                };
                let drawn =
                    chart.draw_series(p.points.iter().copied().filter(inside).map(shape))?;
                if !p.label.is_empty() {
                    labelled = true;
                    drawn.label(&p.label).legend(move |(x, y)| match marker {
                        Marker::Filled => Circle::new((x + 10, y), size, c.filled()).into_dyn(),
                        Marker::Hollow => {
                            Circle::new((x + 10, y), size, c.stroke_width(2)).into_dyn()
                        }
                        Marker::Cross => {
                            Cross::new((x + 10, y), size, c.stroke_width(2)).into_dyn()
                        }
                    });
                }
            }
            Mark::Contours { field, levels } => {
                let style = color(GREY).stroke_width(1);
                for &level in levels {
                    chart.draw_series(
                        field
                            .isolines(level)
                            .into_iter()
                            .map(|[a, b]| PathElement::new(vec![a, b], style)),
                    )?;
                }
            }
            Mark::Arrows(a) => {
                let c = color(a.color);
                for &[from, to] in &a.arrows {
                    // The head is shaped in pixels, then mapped back.
                    let (dx, dy) = ((to.0 - from.0) * sx, (to.1 - from.1) * sy);
                    let len = dx.hypot(dy);
                    if len < 1e-9 {
                        continue;
                    }
                    let head = a.head.min(0.45 * len);
                    let (ux, uy) = (dx / len, dy / len);
                    let (cos, sin) = (25f64.to_radians().cos(), 25f64.to_radians().sin());
                    let barb = |s: f64| {
                        let (bx, by) = (ux * cos - s * uy * sin, uy * cos + s * ux * sin);
                        (to.0 - head * bx / sx, to.1 - head * by / sy)
                    };
                    let neck = (to.0 - 0.8 * head * ux / sx, to.1 - 0.8 * head * uy / sy);
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![from, neck],
                        c.stroke_width(a.width),
                    )))?;
                    chart.draw_series(std::iter::once(Polygon::new(
                        vec![to, barb(1.0), barb(-1.0)],
                        c.filled(),
                    )))?;
                }
            }
            Mark::Picture(p) => {
                let top_left = chart.backend_coord(&(p.x.start, p.y.end));
                let bottom_right = chart.backend_coord(&(p.x.end, p.y.start));
                let w = (bottom_right.0 - top_left.0).max(0) as u32;
                let h = (bottom_right.1 - top_left.1).max(0) as u32;
                if w > 0 && h > 0 && p.width > 0 && p.height > 0 {
                    let bitmap = BitMapElement::with_owned_buffer(
                        (p.x.start, p.y.end),
                        (w, h),
                        p.resampled(w, h),
                    )
                    .expect("resampled to w x h pixels");
                    chart.draw_series(std::iter::once(bitmap))?;
                }
            }
            Mark::Text(l) => {
                let (gap_x, gap_y) = (4.0 / sx, 5.0 / sy);
                let (at, pos) = match l.anchor {
                    Anchor::Center => (l.at, Pos::new(HPos::Center, VPos::Center)),
                    Anchor::Above => (
                        (l.at.0, l.at.1 + gap_y),
                        Pos::new(HPos::Center, VPos::Bottom),
                    ),
                    Anchor::Below => ((l.at.0, l.at.1 - gap_y), Pos::new(HPos::Center, VPos::Top)),
                    Anchor::Left => (
                        (l.at.0 - gap_x, l.at.1),
                        Pos::new(HPos::Right, VPos::Center),
                    ),
                    Anchor::Right => ((l.at.0 + gap_x, l.at.1), Pos::new(HPos::Left, VPos::Center)),
                };
                let font = (FONT, l.size).into_font().color(&color(l.color)).pos(pos);
                chart.draw_series(std::iter::once(Text::new(l.text.clone(), at, font)))?;
            }
            Mark::Node(n) => {
                let outline = BLACK_STYLE.stroke_width(2);
                match n.shape {
                    Shape::Circle { radius } => {
                        let r = (radius * sx.min(sy)).round().max(1.0) as u32;
                        chart.draw_series([
                            Circle::new(n.at, r, WHITE.filled()),
                            Circle::new(n.at, r, outline),
                        ])?;
                    }
                    Shape::Box {
                        half_width,
                        half_height,
                    } => {
                        let corners = [
                            (n.at.0 - half_width, n.at.1 - half_height),
                            (n.at.0 + half_width, n.at.1 + half_height),
                        ];
                        chart.draw_series([
                            Rectangle::new(corners, WHITE.filled()),
                            Rectangle::new(corners, outline),
                        ])?;
                    }
                }
                let font = (FONT, 16)
                    .into_font()
                    .color(&BLACK_STYLE)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(n.label.clone(), n.at, font)))?;
            }
        }
    }
    if labelled {
        draw_legend(&mut chart, panel)?;
    }
    Ok(())
}

const BLACK_STYLE: RGBColor = RGBColor(0, 0, 0);

/// Pixels above a marks panel for its title.
const TITLE_HEIGHT: u32 = 28;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_end_on_the_outline() {
        let circle = Node::circle((0.0, 0.0), 2.0, "x");
        assert_eq!(circle.boundary_towards((10.0, 0.0)), (2.0, 0.0));
        let b = Node::boxed((0.0, 0.0), 3.0, 1.0, "Affine");
        assert_eq!(b.boundary_towards((10.0, 0.0)), (3.0, 0.0));
        assert_eq!(b.boundary_towards((0.0, -5.0)), (0.0, -1.0));
    }

    #[test]
    fn pictures_scale_grey_and_resample() {
        let p = Picture::grey(&[0.0, 1.0, 2.0, 3.0], 2, 2, true, 0.0..2.0, 0.0..2.0);
        assert_eq!(p.pixels[0], (255, 255, 255));
        assert_eq!(p.pixels[3], (0, 0, 0));
        let big = p.resampled(4, 2);
        // Each source pixel twice across: white, white, then 170 (1/3 dark).
        assert_eq!(&big[..9], &[255, 255, 255, 255, 255, 255, 170, 170, 170]);
        // Regions: row 0 of the grid is the bottom, so it comes last.
        let r = Picture::regions(&[0, 0, 1, 1], 2, 2, 0.0..1.0, 0.0..1.0);
        assert_eq!(r.pixels[0], r.pixels[1]);
        assert_ne!(r.pixels[0], r.pixels[2]);
        assert_eq!(
            r.pixels[2].0,
            (255.0 - 0.3 * (255.0 - 31.0f64)).round() as u8
        );
    }
}
