//! The MongoDB servers of the pass, one to a test thread.
//!
//! `TEST_MONGODB_URI` names one server, or several separated by spaces: `scripts/test` starts one
//! SecantusDB per test thread, since a SecantusDB serves one request after another (a Python
//! daemon) and two tests on one were seen to wait on each other until a store deadline ended one.
//! A test thread holds the first free server from its first use until it ends, so every server
//! and every database of one test is on the same server, and no two running tests share one.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Which of the servers a thread holds.
static IN_USE: Mutex<Vec<bool>> = Mutex::new(Vec::new());
static RELEASED: Condvar = Condvar::new();
/// Far longer than a test thread takes to end after its test.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// A server this thread holds; given back when the thread ends.
struct Held {
    index: usize,
    uri: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        in_use[self.index] = false;
        RELEASED.notify_all();
    }
}

/// The server of `uris` this thread holds, taking the first free one on its first call. If all
/// are held it waits for one to come free (a test's thread gives its server back as it ends, just
/// after the test), but not for ever: a thread other than a test's own (a runtime's worker running
/// a spawned task) would wait for a test that waits for it.
pub fn server_of_this_thread(uris: &str) -> String {
    let uris: Vec<&str> = uris.split_whitespace().collect();
    if let [only] = uris.as_slice() {
        return (*only).to_owned();
    }
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if let Some(held) = held.as_ref() {
            return held.uri.clone();
        }
        let mut in_use = IN_USE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        in_use.resize(uris.len(), false);
        let index = loop {
            if let Some(free) = in_use.iter().position(|used| !used) {
                break free;
            }
            let (held, waited) =
                RELEASED.wait_timeout(in_use, LONGEST_WAIT).unwrap_or_else(|poisoned| poisoned.into_inner());
            assert!(
                !waited.timed_out(),
                "no MongoDB server of the pass came free within {LONGEST_WAIT:?}: is the backend asked for on a thread \
                 other than the test's own? Take it before spawning the task"
            );
            in_use = held;
        };
        in_use[index] = true;
        let uri = uris[index].to_owned();
        *held = Some(Held { index, uri: uri.clone() });
        uri
    })
}

/// Whether `uri` is one of the servers `TEST_MONGODB_URI` names.
pub fn is_a_server_of_the_pass(uri: &str) -> bool {
    std::env::var("TEST_MONGODB_URI").is_ok_and(|uris| uris.split_whitespace().any(|server| server == uri))
}
