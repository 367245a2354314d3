//! Holds on blobs, so a blob is never named and deleted at once, in one process or across several.
//!
//! Blobs are shared by content: an upload of bytes already stored finds their blob there, stores
//! nothing, and then stores the attachment that names it. The deleters (the orphan job, and an
//! upload cleaning up after its own failure) delete a blob once no attachment names it. Without a
//! hold, a deleter could find the blob unnamed just before such an upload names it and delete it
//! just after: the new attachment would name bytes that are gone. So an upload holds its blobs from
//! putting them to naming them, and a deleter holds a blob from finding it unnamed to deleting it.
//!
//! The design choice: a hold is a lease in the store (`blob:<sha256>`), so it holds across the
//! processes that share a database, and it runs out after [`HOLD_FOR`] if its holder dies.

use crate::domain::{after, new_id, now};
use crate::error::AppResult;
use crate::store::LeaseStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a hold lasts unless released: far longer than putting the largest upload takes.
const HOLD_FOR: Duration = Duration::from_secs(5 * 60);
/// How long a holder waits for another's hold on the same blob before it gives up.
pub(super) const WAIT_AT_MOST: Duration = Duration::from_secs(30);
/// The first and the longest pause between two tries of a held blob.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

/// Takes holds on blobs.
#[derive(Clone)]
pub(super) struct BlobHolds {
    leases: Arc<dyn LeaseStore>,
}

/// Blobs held until [`Held::release`].
#[must_use = "a hold not released blocks its blobs until it runs out"]
pub(super) struct Held {
    leases: Arc<dyn LeaseStore>,
    names: Vec<String>,
    owner: String,
}

impl BlobHolds {
    pub(super) fn new(leases: Arc<dyn LeaseStore>) -> BlobHolds {
        BlobHolds { leases }
    }

    /// Holds every blob of `sha256s`, waiting up to `wait` for holds others have on them; `None`
    /// when one stayed held that long (then nothing is held). The blobs are taken in one order
    /// whatever the caller's, so two holders of the same blobs never wait on each other.
    pub(super) async fn hold(&self, sha256s: &[&str], wait: Duration) -> AppResult<Option<Held>> {
        let mut names: Vec<String> = sha256s.iter().map(|sha256| format!("blob:{sha256}")).collect();
        names.sort();
        names.dedup();
        let owner = new_id("hold").as_str().to_owned();
        let give_up_at = Instant::now() + wait;
        let mut held = Held { leases: Arc::clone(&self.leases), names: Vec::with_capacity(names.len()), owner };
        for name in names {
            let mut pause = FIRST_PAUSE;
            loop {
                let at = now();
                match self.leases.acquire_lease(&name, &held.owner, after(at, HOLD_FOR), at).await {
                    Ok(true) => {
                        held.names.push(name);
                        break;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        held.release().await;
                        return Err(error);
                    }
                }
                if Instant::now() + pause > give_up_at {
                    held.release().await;
                    return Ok(None);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
        Ok(Some(held))
    }
}

impl Held {
    /// Lets the blobs go. A release that fails is logged: the hold then runs out by itself.
    pub(super) async fn release(self) {
        for name in &self.names {
            if let Err(error) = self.leases.release_lease(name, &self.owner).await {
                tracing::warn!(%error, lease = %name, "a blob's hold was not released; it runs out by itself");
            }
        }
    }
}
