//! Two-stage pipelines: CPU work for the next item on a second thread while this one writes the
//! last. SQLite has one writer, so what can leave its thread is taken off it.

/// Produces `items` on a second thread, up to `ahead` of them ahead of `consume` on this one.
/// Stops at the first error `consume` returns; the producer then stops at its next item.
pub fn run_ahead<T: Send, E>(
    items: impl Iterator<Item = T> + Send,
    ahead: usize,
    mut consume: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (sender, received) = std::sync::mpsc::sync_channel(ahead);
        scope.spawn(move || {
            for item in items {
                // A send fails only when the consumer has stopped.
                if sender.send(item).is_err() {
                    break;
                }
            }
        });
        received.into_iter().try_for_each(&mut consume)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_in_order_and_stops_at_the_first_error() {
        let mut seen = Vec::new();
        let result = run_ahead(0..1_000, 2, |item| {
            seen.push(item);
            if item == 500 {
                Err(item)
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err(500));
        assert_eq!(seen, (0..=500).collect::<Vec<_>>());
    }
}
