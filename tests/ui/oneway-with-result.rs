struct Logger;

#[dopy::remote]
impl Logger {
    #[dopy(oneway)]
    pub fn log(&self, line: String) -> Result<(), String> {
        let _ = line;
        Ok(())
    }
}

fn main() {}
