struct Calculator;

#[dopy::remote(name = "calc")]
impl Calculator {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
