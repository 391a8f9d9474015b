#[derive(Debug)]
pub struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}

struct Calculator;

#[dopy::remote]
impl Calculator {
    pub fn check(&self) -> Result<u8, Oops> {
        Err(Oops)
    }
}

fn main() {}
