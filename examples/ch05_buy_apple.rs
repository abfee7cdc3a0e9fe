//! Chapter 5, `buy_apple.py`: 2 apples at 100 with tax 1.1, forward through
//! two MulLayers and back from `dprice = 1` (`backprop learn
//! computational-graph` draws the graph).
//!
//! `cargo run --release --example ch05_buy_apple`

use backprop::learn::MulLayer;
use backprop::learn::numpy::short;

fn main() {
    let (apple, apple_num, tax) = (100.0, 2.0, 1.1);
    let mut mul_apple_layer = MulLayer::new();
    let mut mul_tax_layer = MulLayer::new();

    let apple_price = mul_apple_layer.forward(apple, apple_num);
    let price = mul_tax_layer.forward(apple_price, tax);

    let dprice = 1.0;
    let (dapple_price, dtax) = mul_tax_layer.backward(dprice);
    let (dapple, dapple_num) = mul_apple_layer.backward(dapple_price);

    // `short` prints 220.00000000000003 as 220, as the book does with int().
    println!("price: {}", short(price));
    println!("dApple: {}", short(dapple));
    println!("dApple_num: {}", short(dapple_num));
    println!("dTax: {}", short(dtax));
}
