//! Grows a demo database to a year's data for the `scale` section of `scripts/bench`: for demo-a
//! and demo-b, `SCALE_ROWS` (default 100,000) more customers, tickets (with their history and the
//! notification that announces each), alerts, and chat messages all in one conversation (the
//! provider's first customer: c001 for demo-a).
//!
//! Every row goes in through the store's ports, as the server writes it: customers through
//! `save_customers` (the SaaS sync), a batch at a time; tickets, notifications and messages through
//! their single-row inserts, many at once, which the SQLite writer commits together. No SQL of its
//! own: the database holds only what the server's own code wrote. Each new row copies the shape of
//! one of the provider's demo rows (so names and titles are the demo's Chinese text, and a keyword
//! finds what it finds in the demo, in proportion), with its times spread over the past year; a
//! customer's expiry is its own, so the three statuses hold what a year's book holds
//! ([`expiry_offset`]).
//!
//! ```text
//! provider-desk                      # once, with DATA_DIR=<dir>: seeds the demo data; then stop it
//! SCALE_ROWS=100000 cargo run --release --example bench_scale_seed -- <dir>
//! ```

use chrono::Duration;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use provider_desk::domain::{
    now, ChatMessage, Customer, CustomerStatus, Id, Notification, PageRequest, Ticket, Timestamp,
};
use provider_desk::error::AppResult;
use provider_desk::store::sqlite::SqliteStore;
use provider_desk::store::{
    ChatStore, CustomerFilter, CustomerStore, NotificationFilter, NotificationStore, ProviderStore, TicketFilter,
    TicketStore,
};
use std::sync::Arc;
use std::time::Instant;

/// Writes in flight at once: enough for the writer to commit them in groups.
const IN_FLIGHT: usize = 256;
/// Customers per `save_customers` call, as a SaaS sync sends them.
const SYNC_BATCH: usize = 500;

#[tokio::main]
async fn main() -> AppResult<()> {
    let data_dir =
        std::env::args().nth(1).expect("usage: bench_scale_seed <DATA_DIR of a server seeded with the demo>");
    let rows: usize = std::env::var("SCALE_ROWS").ok().map_or(100_000, |n| n.parse().expect("SCALE_ROWS is a number"));
    let store = Arc::new(SqliteStore::open(data_dir.as_ref())?);
    let at = now();
    for username in ["demo-a", "demo-b"] {
        let (provider, _) = store.provider_credentials(username).await?.expect("the demo provider is seeded");
        let demo = Demo::read(&store, &provider.id).await?;
        let tag = provider.id.as_str();
        let started = Instant::now();
        grow(&store, demo, tag, rows, at).await?;
        eprintln!("{username}: {rows} rows a table in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// One provider's demo rows, the shapes the new rows copy.
struct Demo {
    customers: Vec<Customer>,
    tickets: Vec<Ticket>,
    notifications: Vec<Notification>,
    conversation: Vec<ChatMessage>,
}

impl Demo {
    async fn read(store: &SqliteStore, provider: &Id) -> AppResult<Demo> {
        let all = PageRequest::new(1, 100).expect("a valid page");
        let customers = store.list_customers(provider, &CustomerFilter::default(), all).await?.items;
        let tickets = store.list_tickets(provider, &TicketFilter::default(), all).await?.items;
        let notifications = store.list_notifications(provider, &NotificationFilter::default(), all).await?.items;
        let mut first = customers.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        first.sort();
        let conversation = store.list_chat_messages(provider, &first[0], all).await?.items;
        assert!(!tickets.is_empty() && !conversation.is_empty(), "the demo data is seeded");
        Ok(Demo { customers, tickets, notifications, conversation })
    }
}

/// Row `i` of `rows` is this far back: the rows spread evenly over the past year.
fn age(i: usize, rows: usize) -> Duration {
    Duration::seconds((i as i64 * 365 * 86_400) / rows.max(1) as i64 + 60)
}

/// When customer `i` expires, from the seeding: a year's book of subscriptions, seven in ten
/// active (expiring in 31 days to two years), one in ten expiring within the 30-day window, two in
/// ten expired over the past year; the dates scattered so that neither the update order nor the
/// day of expiry follows the other.
fn expiry_offset(i: usize) -> Duration {
    const DAY: i64 = 86_400;
    let scatter = (i as i64).wrapping_mul(7_919);
    match i % 10 {
        0 => Duration::seconds(1 + scatter % (30 * DAY)),
        1 | 2 => -Duration::seconds(scatter % (365 * DAY)),
        _ => Duration::seconds(31 * DAY + scatter % (700 * DAY)),
    }
}

async fn grow(store: &Arc<SqliteStore>, demo: Demo, tag: &str, rows: usize, at: Timestamp) -> AppResult<()> {
    let new_customers: Vec<Customer> =
        (0..rows).map(|i| customer(&demo.customers[i % demo.customers.len()], tag, i, at - age(i, rows), at)).collect();
    stream::iter(new_customers.chunks(SYNC_BATCH).map(|batch| store.save_customers(batch)))
        .buffer_unordered(8)
        .try_for_each(|_| async { Ok(()) })
        .await?;

    // Each demo customer gets a share of the tickets (c001 about rows / 30); a ticket's
    // announcement is the demo notification of the ticket it copies.
    let announcements: Vec<Option<&Notification>> = demo
        .tickets
        .iter()
        .map(|t| demo.notifications.iter().find(|n| n.related_ticket_id.as_ref() == Some(&t.id)))
        .collect();
    stream::iter(0..rows)
        .map(|i| {
            let k = i % demo.tickets.len();
            let owner = &demo.customers[i % demo.customers.len()];
            let (ticket, notification) = ticket(&demo.tickets[k], owner, announcements[k], tag, i, at - age(i, rows));
            let store = store.clone();
            async move { store.insert_ticket(&ticket, &notification, None, &[]).await.map(drop) }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;

    // Alerts (expiry, usage): a tenth as many, beside the tickets' announcements.
    let alerts: Vec<&Notification> = demo.notifications.iter().filter(|n| n.related_ticket_id.is_none()).collect();
    if !alerts.is_empty() {
        stream::iter(0..rows / 10)
            .map(|i| {
                let mut alert = alerts[i % alerts.len()].clone();
                alert.id = Id::from_stored(format!("m-{tag}-a{i}"));
                alert.created_at = at - age(i * 10, rows);
                alert.read_at = alert.read_at.map(|_| alert.created_at + Duration::minutes(5));
                let store = store.clone();
                async move { store.insert_notification(&alert).await.map(drop) }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_for_each(|_| async { Ok(()) })
            .await?;
    }

    // One conversation, oldest first so that its order is the order of insertion too.
    stream::iter((0..rows).rev())
        .map(|i| {
            let mut message = demo.conversation[i % demo.conversation.len()].clone();
            message.id = Id::from_stored(format!("cm-{tag}-{i}"));
            message.timestamp = at - age(i, rows);
            let store = store.clone();
            async move { store.insert_chat_message(&message, None, &[]).await.map(drop) }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
}

fn customer(template: &Customer, tag: &str, i: usize, updated_at: Timestamp, at: Timestamp) -> Customer {
    let mut customer = template.clone();
    customer.id = Id::from_stored(format!("c-{tag}-{i}"));
    customer.name = format!("{}{}号店", template.name, i);
    customer.expiry_date = at + expiry_offset(i);
    customer.stored_status = CustomerStatus::at(customer.expiry_date, at);
    customer.created_at = updated_at - Duration::days(30);
    customer.updated_at = updated_at;
    customer.usage_updated_at = updated_at;
    customer.last_active_time = updated_at;
    customer
}

fn ticket(
    template: &Ticket,
    owner: &Customer,
    announcement: Option<&Notification>,
    tag: &str,
    i: usize,
    updated_at: Timestamp,
) -> (Ticket, Notification) {
    let mut ticket = template.clone();
    let shift = updated_at - template.updated_at;
    ticket.id = Id::from_stored(format!("t-{tag}-{i}"));
    ticket.customer_id = owner.id.clone();
    ticket.customer_name = owner.name.clone();
    ticket.created_at += shift;
    ticket.updated_at = updated_at;
    ticket.escalated_at = ticket.escalated_at.map(|t| t + shift);
    ticket.resolved_at = ticket.resolved_at.map(|t| t + shift);
    for (n, entry) in ticket.history.iter_mut().enumerate() {
        entry.id = Id::from_stored(format!("h-{tag}-{i}-{n}"));
        entry.timestamp += shift;
    }
    let mut notification = announcement.cloned().unwrap_or_else(|| Notification {
        id: Id::from_stored(String::new()),
        service_provider_id: ticket.service_provider_id.clone(),
        notification_type: provider_desk::domain::NotificationType::TicketUpdate,
        title: ticket.title.clone(),
        content: ticket.content.clone(),
        related_customer_id: Some(ticket.customer_id.clone()),
        related_customer_name: Some(ticket.customer_name.clone()),
        related_ticket_id: None,
        read_status: provider_desk::domain::ReadStatus::Read,
        created_at: updated_at,
        read_at: None,
    });
    notification.id = Id::from_stored(format!("m-{tag}-t{i}"));
    notification.related_ticket_id = Some(ticket.id.clone());
    notification.related_customer_id = Some(ticket.customer_id.clone());
    notification.related_customer_name = Some(ticket.customer_name.clone());
    notification.created_at = updated_at;
    notification.read_at = notification.read_at.map(|_| updated_at + Duration::minutes(5));
    (ticket, notification)
}
