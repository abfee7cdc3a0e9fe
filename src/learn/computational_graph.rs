//! Chapter 5, `layer_naive.py`, `buy_apple.py`, `buy_apple_orange.py`: the
//! computational graph. Each node is a layer with a `forward` that computes
//! its output and a `backward` that turns the derivative of the final
//! result with respect to its output (`dout`) into the derivatives with
//! respect to its inputs, by the chain rule: a product passes on `dout`
//! times the *other* input, a sum passes `dout` unchanged to both. Walking
//! the graph backwards from `dout = 1` gives every input's derivative.
//!
//! ```
//! use backprop::learn::MulLayer;
//! let (mut mul_apple, mut mul_tax) = (MulLayer::new(), MulLayer::new());
//! let apple_price = mul_apple.forward(100.0, 2.0);
//! let price = mul_tax.forward(apple_price, 1.1);
//! let (dapple_price, dtax) = mul_tax.backward(1.0);
//! let (dapple, dapple_num) = mul_apple.backward(dapple_price);
//! assert_eq!((price.round(), dapple, dapple_num.round(), dtax), (220.0, 2.2, 110.0, 200.0));
//! ```

use std::fmt::Write as _;

use anyhow::Result;

use super::numpy::short;
use super::{Options, Outcome};
use crate::experiments::figure_and_csv;
use crate::plot::{Anchor, Arrows, Figure, INK, Label, Mark, Node, Panel, palette};

/// `z = x · y`; backward: `dx = dout · y`, `dy = dout · x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MulLayer {
    /// Both inputs: each one's derivative is the other.
    x: f64,
    y: f64,
}

impl MulLayer {
    pub fn new() -> Self {
        MulLayer::default()
    }

    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        self.x = x;
        self.y = y;
        x * y
    }

    pub fn backward(&self, dout: f64) -> (f64, f64) {
        (dout * self.y, dout * self.x)
    }
}

/// `z = x + y`; backward: `dx = dy = dout`. Nothing to remember.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddLayer;

impl AddLayer {
    pub fn new() -> Self {
        AddLayer
    }

    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        x + y
    }

    pub fn backward(&self, dout: f64) -> (f64, f64) {
        (dout, dout)
    }
}

/// `buy_apple.py`: 2 apples at 100, tax 1.1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Apple {
    pub apple_price: f64,
    pub price: f64,
    pub dapple_price: f64,
    pub dapple: f64,
    pub dapple_num: f64,
    pub dtax: f64,
}

pub fn buy_apple() -> Apple {
    let (apple, apple_num, tax) = (100.0, 2.0, 1.1);
    let mut mul_apple_layer = MulLayer::new();
    let mut mul_tax_layer = MulLayer::new();
    let apple_price = mul_apple_layer.forward(apple, apple_num);
    let price = mul_tax_layer.forward(apple_price, tax);
    let dprice = 1.0;
    let (dapple_price, dtax) = mul_tax_layer.backward(dprice);
    let (dapple, dapple_num) = mul_apple_layer.backward(dapple_price);
    Apple {
        apple_price,
        price,
        dapple_price,
        dapple,
        dapple_num,
        dtax,
    }
}

/// `buy_apple_orange.py`: 2 apples at 100, 3 oranges at 150, tax 1.1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppleOrange {
    pub apple_price: f64,
    pub orange_price: f64,
    pub all_price: f64,
    pub price: f64,
    pub dall_price: f64,
    pub dtax: f64,
    pub dapple_price: f64,
    pub dorange_price: f64,
    pub dapple: f64,
    pub dapple_num: f64,
    pub dorange: f64,
    pub dorange_num: f64,
}

pub fn buy_apple_orange() -> AppleOrange {
    let (apple, apple_num, orange, orange_num, tax) = (100.0, 2.0, 150.0, 3.0, 1.1);
    let mut mul_apple_layer = MulLayer::new();
    let mut mul_orange_layer = MulLayer::new();
    let mut add_apple_orange_layer = AddLayer::new();
    let mut mul_tax_layer = MulLayer::new();
    let apple_price = mul_apple_layer.forward(apple, apple_num);
    let orange_price = mul_orange_layer.forward(orange, orange_num);
    let all_price = add_apple_orange_layer.forward(apple_price, orange_price);
    let price = mul_tax_layer.forward(all_price, tax);
    let dprice = 1.0;
    let (dall_price, dtax) = mul_tax_layer.backward(dprice);
    let (dapple_price, dorange_price) = add_apple_orange_layer.backward(dall_price);
    let (dorange, dorange_num) = mul_orange_layer.backward(dorange_price);
    let (dapple, dapple_num) = mul_apple_layer.backward(dapple_price);
    AppleOrange {
        apple_price,
        orange_price,
        all_price,
        price,
        dall_price,
        dtax,
        dapple_price,
        dorange_price,
        dapple,
        dapple_num,
        dorange,
        dorange_num,
    }
}

/// An end of an edge: a node of the graph, or a free point (an input or
/// the output, named by text beside it).
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    Node(usize),
    Point(f64, f64),
}

/// A graph drawing: nodes, and edges with their forward value above (black)
/// and backward value below (red), as the book draws its graphs.
#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<Node>,
    marks: Vec<Mark>,
}

impl Graph {
    pub(crate) fn node(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn centre(&self, end: End) -> (f64, f64) {
        match end {
            End::Node(i) => self.nodes[i].at,
            End::Point(x, y) => (x, y),
        }
    }

    fn outline(&self, end: End, towards: (f64, f64)) -> (f64, f64) {
        match end {
            End::Node(i) => self.nodes[i].boundary_towards(towards),
            End::Point(x, y) => (x, y),
        }
    }

    /// An arrow from `from` to `to`, `forward` above its middle and
    /// `backward` below.
    pub(crate) fn edge(&mut self, from: End, to: End, forward: &str, backward: &str) {
        let (a, b) = (self.centre(from), self.centre(to));
        let (start, end) = (self.outline(from, b), self.outline(to, a));
        self.marks
            .push(Mark::Arrows(Arrows::new(vec![[start, end]], INK).width(2)));
        let mid = ((start.0 + end.0) / 2.0, (start.1 + end.1) / 2.0);
        self.marks
            .push(Mark::Text(Label::new(mid, forward, Anchor::Above).size(15)));
        self.marks.push(Mark::Text(
            Label::new(mid, backward, Anchor::Below)
                .size(15)
                .color(palette(3)),
        ));
    }

    /// Text beside a point (an input's or the output's name).
    pub(crate) fn text(&mut self, at: (f64, f64), text: &str, anchor: Anchor) {
        self.marks
            .push(Mark::Text(Label::new(at, text, anchor).size(15)));
    }

    /// The panel: edges first, nodes over their ends.
    pub(crate) fn panel(self, title: &str) -> Panel {
        let mut marks = self.marks;
        marks.extend(self.nodes.into_iter().map(Mark::Node));
        Panel::marks(title, "", "", marks).no_axes().equal_aspect()
    }
}

fn apple_panel(a: &Apple) -> Panel {
    let mut g = Graph::default();
    let mul_apple = g.node(Node::circle((10.0, 4.0), 1.2, "×"));
    let mul_tax = g.node(Node::circle((20.0, 2.5), 1.2, "×"));
    g.text((2.0, 6.0), "apple", Anchor::Left);
    g.edge(
        End::Point(2.0, 6.0),
        End::Node(mul_apple),
        "100",
        &short(a.dapple),
    );
    g.text((2.0, 1.5), "apple count", Anchor::Left);
    g.edge(
        End::Point(2.0, 1.5),
        End::Node(mul_apple),
        "2",
        &short(a.dapple_num),
    );
    g.edge(
        End::Node(mul_apple),
        End::Node(mul_tax),
        &short(a.apple_price),
        &short(a.dapple_price),
    );
    g.text((9.0, -0.5), "tax", Anchor::Left);
    g.edge(
        End::Point(9.0, -0.5),
        End::Node(mul_tax),
        "1.1",
        &short(a.dtax),
    );
    g.edge(
        End::Node(mul_tax),
        End::Point(28.0, 2.5),
        &short(a.price),
        "1",
    );
    g.text((28.0, 2.5), "price", Anchor::Right);
    g.panel("buy_apple.py: forward values above the edges, backward (d price / d ·) below")
        .x_range(-7.0..32.0)
}

fn apple_orange_panel(a: &AppleOrange) -> Panel {
    let mut g = Graph::default();
    let mul_apple = g.node(Node::circle((10.0, 8.0), 1.2, "×"));
    let mul_orange = g.node(Node::circle((10.0, 1.0), 1.2, "×"));
    let add = g.node(Node::circle((18.0, 4.5), 1.2, "+"));
    let mul_tax = g.node(Node::circle((25.0, 3.5), 1.2, "×"));
    g.text((2.0, 10.0), "apple", Anchor::Left);
    g.edge(
        End::Point(2.0, 10.0),
        End::Node(mul_apple),
        "100",
        &short(a.dapple),
    );
    g.text((2.0, 6.0), "apple count", Anchor::Left);
    g.edge(
        End::Point(2.0, 6.0),
        End::Node(mul_apple),
        "2",
        &short(a.dapple_num),
    );
    g.text((2.0, 3.0), "orange", Anchor::Left);
    g.edge(
        End::Point(2.0, 3.0),
        End::Node(mul_orange),
        "150",
        &short(a.dorange),
    );
    g.text((2.0, -1.0), "orange count", Anchor::Left);
    g.edge(
        End::Point(2.0, -1.0),
        End::Node(mul_orange),
        "3",
        &short(a.dorange_num),
    );
    g.edge(
        End::Node(mul_apple),
        End::Node(add),
        &short(a.apple_price),
        &short(a.dapple_price),
    );
    g.edge(
        End::Node(mul_orange),
        End::Node(add),
        &short(a.orange_price),
        &short(a.dorange_price),
    );
    g.edge(
        End::Node(add),
        End::Node(mul_tax),
        &short(a.all_price),
        &short(a.dall_price),
    );
    g.text((12.0, -1.0), "tax", Anchor::Left);
    g.edge(
        End::Point(12.0, -1.0),
        End::Node(mul_tax),
        "1.1",
        &short(a.dtax),
    );
    g.edge(
        End::Node(mul_tax),
        End::Point(32.0, 3.5),
        &short(a.price),
        "1",
    );
    g.text((32.0, 3.5), "price", Anchor::Right);
    g.panel("buy_apple_orange.py").x_range(-9.0..36.0)
}

/// `buy_apple.py`'s output lines: `price: 220`, ...
pub fn apple_lines(a: &Apple) -> String {
    format!(
        "price: {}\ndApple: {}\ndApple_num: {}\ndTax: {}\n",
        short(a.price),
        short(a.dapple),
        short(a.dapple_num),
        short(a.dtax)
    )
}

/// `buy_apple_orange.py`'s output lines.
pub fn apple_orange_lines(a: &AppleOrange) -> String {
    format!(
        "price: {}\ndApple: {}\ndApple_num: {}\ndOrange: {}\ndOrange_num: {}\ndTax: {}\n",
        short(a.price),
        short(a.dapple),
        short(a.dapple_num),
        short(a.dorange),
        short(a.dorange_num),
        short(a.dtax)
    )
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let (a, ao) = (buy_apple(), buy_apple_orange());
    let mut table = String::new();
    writeln!(table, "buy_apple.py").expect("writing to a String");
    table.push_str(&apple_lines(&a));
    writeln!(table, "buy_apple_orange.py").expect("writing to a String");
    table.push_str(&apple_orange_lines(&ao));
    table.push_str(
        "(×: each input's derivative is dout times the other input; +: dout passes to both)\n",
    );
    let rows = vec![
        format!("apple,price,{}", a.price),
        format!("apple,dapple,{}", a.dapple),
        format!("apple,dapple_num,{}", a.dapple_num),
        format!("apple,dtax,{}", a.dtax),
        format!("apple_orange,price,{}", ao.price),
        format!("apple_orange,dapple,{}", ao.dapple),
        format!("apple_orange,dapple_num,{}", ao.dapple_num),
        format!("apple_orange,dorange,{}", ao.dorange),
        format!("apple_orange,dorange_num,{}", ao.dorange_num),
        format!("apple_orange,dtax,{}", ao.dtax),
    ];
    let figure =
        Figure::new(vec![apple_panel(&a), apple_orange_panel(&ao)], 1).panel_size(900, 380);
    figure_and_csv(
        &figure,
        opts,
        "computational-graph",
        "example,value,number",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::learn::{Lesson, tests::run_quick};

    #[test]
    fn the_books_apples_and_oranges() {
        assert_eq!(
            apple_lines(&buy_apple()),
            "price: 220\ndApple: 2.2\ndApple_num: 110\ndTax: 200\n"
        );
        assert_eq!(
            apple_orange_lines(&buy_apple_orange()),
            "price: 715\ndApple: 2.2\ndApple_num: 110\ndOrange: 3.3\ndOrange_num: 165\ndTax: 650\n"
        );
        // The exact doubles behind the short forms.
        let ao = buy_apple_orange();
        assert_eq!(
            (ao.dorange, ao.price, ao.all_price),
            (3.3000000000000003, 715.0000000000001, 650.0)
        );
    }

    #[test]
    fn backward_is_the_derivative() {
        // d(x·y)/dx at (3, 4) is 4 and d/dy is 3, times dout.
        let mut mul = MulLayer::new();
        assert_eq!(mul.forward(3.0, 4.0), 12.0);
        assert_eq!(mul.backward(2.0), (8.0, 6.0));
        let mut add = AddLayer::new();
        assert_eq!(add.forward(3.0, 4.0), 7.0);
        assert_eq!(add.backward(2.0), (2.0, 2.0));
    }

    #[test]
    fn the_lesson_prints_and_draws() {
        let dir = TempDir::new("learn-graph");
        let outcome = run_quick(Lesson::ComputationalGraph, dir.path());
        assert!(
            outcome.table.starts_with("buy_apple.py\nprice: 220\n"),
            "{}",
            outcome.table
        );
    }
}
