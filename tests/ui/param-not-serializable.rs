struct NotSerde;

struct Sink;

#[dopy::remote]
impl Sink {
    pub fn take(&self, value: NotSerde) {
        let _ = value;
    }
}

fn main() {}
