struct Calculator;

#[dopy::remote]
impl Default for Calculator {
    fn default() -> Self {
        Calculator
    }
}

fn main() {}
