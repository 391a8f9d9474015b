struct Calculator;

#[dopy::remote]
impl Calculator {
    #[dopy(name = "dopy.methods")]
    pub fn methods(&self) {}
}

fn main() {}
