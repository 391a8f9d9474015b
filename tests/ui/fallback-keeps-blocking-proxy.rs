use dopy::blocking::{self, BlockingProxy};

#[derive(Default)]
pub struct Calculator;

#[dopy::remote]
impl Calculator {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    pub fn broken(&self, text: &str) -> usize {
        text.len()
    }
}

// Valid code that uses the blocking proxy the macro generates, its valid methods and its trait.
// None of it may add errors to the one above.
fn use_blocking(node: &blocking::Node) -> Result<i64, dopy::Error> {
    let calc: CalculatorBlockingProxy = node.proxy("tcp://127.0.0.1:9600/calc")?;
    let copy = CalculatorBlockingProxy::from_async(calc.as_async().clone(), node.runtime().clone());
    Ok(copy.add(1, 2)?)
}

fn main() {
    let _ = use_blocking;
}
