struct Printer;

#[dopy::remote]
impl Printer {
    pub fn print(&self, line: impl std::fmt::Display) {
        println!("{line}");
    }
}

fn main() {}
