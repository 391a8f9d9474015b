use std::rc::Rc;

struct Counter;

async fn tick() {}

#[dopy::remote]
impl Counter {
    pub async fn count(&self) -> usize {
        let local = Rc::new(1);
        tick().await;
        *local
    }
}

fn main() {}
