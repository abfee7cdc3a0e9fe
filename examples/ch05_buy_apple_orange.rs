//! Chapter 5, `buy_apple_orange.py`: apples and oranges through MulLayers
//! and an AddLayer, then back from `dprice = 1`.
//!
//! `cargo run --release --example ch05_buy_apple_orange`

use backprop::learn::numpy::short;
use backprop::learn::{AddLayer, MulLayer};

fn main() {
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

    println!("price: {}", short(price));
    println!("dApple: {}", short(dapple));
    println!("dApple_num: {}", short(dapple_num));
    println!("dOrange: {}", short(dorange));
    println!("dOrange_num: {}", short(dorange_num));
    println!("dTax: {}", short(dtax));
}
