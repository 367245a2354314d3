//! The demo data of the MongoDB pass, seeded once and copied into each test's database.
//!
//! Seeding the demo providers is some two hundred store transactions; SecantusDB, the pass's
//! MongoDB, takes about five seconds over them, more than most tests take over everything else.
//! So the first seeded server of a test binary has the application seed a database of its own
//! (its real seeding, through its real store), whose documents are kept here and dropped from the
//! server; every later seeded server finds them copied into its fresh database (a quarter of a
//! second, one `insertMany` a collection), builds its indexes over them, and seeds nothing because
//! the store is not empty, as a server restarted on a seeded store does.
//!
//! The seed dates the data from the time it runs. A copy made much later would be older than
//! freshly seeded data, so the documents are seeded again when they are older than
//! [`MAX_AGE`] or from another UTC day. The SQLite pass seeds each server itself.

use super::{mongo_servers, on_own_runtime, test_config, Backend};
use chrono::{NaiveDate, Utc};
use mongodb::bson::{doc, Document};
use provider_desk::app::Application;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a seeding serves copies: short beside the minutes, days and months the demo data's
/// times are apart from each other and from now.
const MAX_AGE: Duration = Duration::from_secs(300);

/// Every non-empty collection of a freshly seeded store, with its documents.
struct Seeded {
    collections: Arc<Vec<(String, Vec<Document>)>>,
    at: Instant,
    day: NaiveDate,
}

impl Seeded {
    fn fresh(&self) -> bool {
        self.at.elapsed() < MAX_AGE && self.day == Utc::now().date_naive()
    }
}

static SEEDED: Mutex<Option<Seeded>> = Mutex::const_new(None);

/// Copies the demo data into `database` if it is on one of the pass's servers and holds no
/// provider yet, so that a server that would seed it finds the demo data already there. The
/// servers a test starts and stops itself (the fault tests') are left to the application's own
/// seeding, as is every database on SQLite.
pub fn copy_demo_data_if_empty(backend: &Backend, database: &str) {
    let Backend::Mongo { mongodb_uri, .. } = backend else { return };
    if !mongo_servers::is_a_server_of_the_pass(mongodb_uri) {
        return;
    }
    let (backend, uri, name) = (backend.clone(), mongodb_uri.clone(), database.to_owned());
    on_own_runtime(move || async move {
        let client = mongodb::Client::with_uri_str(&uri).await.expect("MongoDB answers");
        let database = client.database(&name);
        let providers = database.collection::<Document>("providers");
        if providers.find_one(doc! {}).await.expect("MongoDB answers").is_some() {
            return;
        }
        for (collection, documents) in seeded_collections(&backend).await.iter() {
            database
                .collection::<Document>(collection)
                .insert_many(documents)
                .await
                .unwrap_or_else(|e| panic!("the demo data's {collection} are copied: {e}"));
        }
    });
}

/// The seeded documents, seeded now if there are none fresh.
async fn seeded_collections(backend: &Backend) -> Arc<Vec<(String, Vec<Document>)>> {
    let mut seeded = SEEDED.lock().await;
    if let Some(fresh) = seeded.as_ref().filter(|s| s.fresh()) {
        return Arc::clone(&fresh.collections);
    }
    let collections = Arc::new(seed(backend).await);
    *seeded = Some(Seeded { collections: Arc::clone(&collections), at: Instant::now(), day: Utc::now().date_naive() });
    collections
}

/// Has the application seed a database of its own, reads every document of it, and drops it.
async fn seed(backend: &Backend) -> Vec<(String, Vec<Document>)> {
    let Backend::Mongo { mongodb_uri, .. } = backend else { unreachable!("the demo data are copied on MongoDB only") };
    let temp = tempfile::tempdir().expect("a temporary directory");
    let config = test_config(backend, temp.path(), true, &[]);
    let name = config.mongo.database.clone();
    drop(Application::build(config).await.expect("the application seeds its demo data"));
    let client = mongodb::Client::with_uri_str(mongodb_uri).await.expect("MongoDB answers");
    let database = client.database(&name);
    let mut collections = Vec::new();
    for collection in database.list_collection_names().await.expect("the collections are listed") {
        let mut cursor =
            database.collection::<Document>(&collection).find(doc! {}).await.expect("a collection is read");
        let mut documents = Vec::new();
        while cursor.advance().await.expect("a collection is read") {
            documents.push(cursor.deserialize_current().expect("a document"));
        }
        if !documents.is_empty() {
            collections.push((collection, documents));
        }
    }
    database.drop().await.expect("the seeded database is dropped");
    collections
}
