//! Training images with their labels, the textbook's `mnist_show.py`: each
//! image in grey (ink dark, paper light), titled with its label, in a grid.
//!
//! ```
//! use backprop::data::{Dataset, Features, InputKind, numbered_classes};
//! use backprop::show::examples_figure;
//! let data = Dataset {
//!     name: "tiny".into(),
//!     features: Features::Pixels(vec![0, 255, 255, 0, 9, 9, 9, 9]),
//!     labels: vec![5, 0],
//!     class_names: numbered_classes(10),
//!     shape: [1, 2, 2],
//!     input: InputKind::Digits,
//! };
//! let figure = examples_figure(&data, &[0, 1], 10).unwrap();
//! assert_eq!(figure.panels[0].title, "5");
//! ```

use super::ShowError;
use crate::data::{Dataset, Features};
use crate::plot::{Figure, Mark, Panel, Picture};

/// The examples `indices` of `data` (images: channel 0 is shown), `columns`
/// to a row.
pub fn examples_figure(
    data: &Dataset,
    indices: &[usize],
    columns: usize,
) -> Result<Figure, ShowError> {
    let Features::Pixels(pixels) = &data.features else {
        return Err(ShowError::NotImages {
            dataset: data.name.clone(),
            shape: data.shape,
        });
    };
    let [_, h, w] = data.shape;
    let dim = data.dim();
    let panels = indices
        .iter()
        .map(|&i| {
            let image: Vec<f64> = pixels[i * dim..i * dim + h * w]
                .iter()
                .map(|&p| f64::from(p))
                .collect();
            let (wf, hf) = (w as f64, h as f64);
            let picture = Picture::grey(&image, w, h, true, 0.0..wf, 0.0..hf);
            Panel::marks(
                &data.class_names[usize::from(data.labels[i])],
                "",
                "",
                vec![Mark::Picture(picture)],
            )
            .x_range(0.0..wf)
            .y_range(0.0..hf)
            .no_axes()
            .equal_aspect()
        })
        .collect();
    Ok(Figure::new(panels, columns.min(indices.len()).max(1)).panel_size(110, 130))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_data_has_no_pictures() {
        let spiral = crate::data::spiral::generate(3, 4, 0.2, 0);
        assert!(matches!(
            examples_figure(&spiral, &[0], 10),
            Err(ShowError::NotImages { .. })
        ));
    }
}
