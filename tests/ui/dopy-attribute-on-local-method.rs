struct Calculator;

#[dopy::remote]
impl Calculator {
    #[dopy(name = "helper")]
    fn helper(&self) {}

    pub fn run(&self) {
        self.helper();
    }
}

fn main() {}
