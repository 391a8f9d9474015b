struct Calculator;

#[dopy::remote]
impl Calculator {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    #[dopy(name = "add")]
    pub fn add_three(&self, a: i64, b: i64, c: i64) -> i64 {
        a + b + c
    }
}

fn main() {}
