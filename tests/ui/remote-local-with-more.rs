struct Counter(std::rc::Rc<std::cell::Cell<i64>>);

#[dopy::remote(local, name = "counter")]
impl Counter {
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

fn main() {}
