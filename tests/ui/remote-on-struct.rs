#[dopy::remote]
pub struct Calculator;

fn main() {
    let _ = Calculator;
}
