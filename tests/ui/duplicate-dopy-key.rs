struct Calculator;

#[dopy::remote]
impl Calculator {
    #[dopy(name = "plus")]
    #[dopy(oneway, name = "sum")]
    pub fn add(&self, a: i64) {
        let _ = a;
    }
}

fn main() {}
