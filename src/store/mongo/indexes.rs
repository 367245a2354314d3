//! The index plan: one index per query the port makes, created at every start (creating an index
//! that exists is a no-op). Every read's query shape names its index in [`super::query_shapes`];
//! the query-plan check (`tests/contract/query_plans.rs`) holds each against these keys and the
//! server's `explain`, so the table and the queries cannot drift apart.
//!
//! | collection | index | serves |
//! | --- | --- | --- |
//! | `providers` | `id` unique, `username` unique, `email` unique | sign-in, provider lookups |
//! | | `createdAt, username` | every provider, oldest first (the CLI) |
//! | `customers` | `id` unique | customer lookups (loaders, detail) |
//! | | `serviceProviderId, updatedAt -1, id` | the customer list, newest first |
//! | | `serviceProviderId, expiryDate` | the list filtered by status (an expiry-date range) |
//! | | `serviceProviderId, search.grams, updatedAt -1, id` | search and the keyword filter: one gram of the query, newest first (replaces `provider_name` and `provider_contact`) |
//! | `tickets` | `id` unique | ticket detail and changes |
//! | | `serviceProviderId, updatedAt -1, id` | the ticket list |
//! | | `serviceProviderId, status, updatedAt -1, id` | the list filtered by status (replaces `provider_status_updated`, which lacked the `id`) |
//! | | `serviceProviderId, customerId, updatedAt -1, id` | a customer's tickets, in list order |
//! | | `serviceProviderId, type, updatedAt -1, id` | the list filtered by type |
//! | | `serviceProviderId, customerId, status` | counting a page's customers' unresolved tickets |
//! | | `customerId, status` | the same count for customers of any provider (`customers_anywhere`) |
//! | | `serviceProviderId, search.grams, updatedAt -1, id` | search: one gram of the query, newest first |
//! | | `serviceProviderId, slaBreachAt, id` | the list filtered by SLA status, most overdue first |
//! | | `slaAlertAt, id` | the `sla-breaches` job: tickets owed a breach alert |
//! | `ticketHistory` | `id` unique | a retried change finding whether its first attempt committed |
//! | | `ticketId, ticketVersion, position` | a ticket's history, in the order it was written |
//! | | `serviceProviderId, search.grams, ticketId` | search: the tickets whose replies hold a query of three or more characters |
//! | `notifications` | `id` unique | detail, mark read |
//! | | `serviceProviderId, createdAt -1, id -1` | the list |
//! | | `serviceProviderId, readStatus, createdAt -1, id -1` | unread count, read-status filter, mark all read (replaces `provider_read_created`) |
//! | | `serviceProviderId, type, createdAt -1, id -1` | the list filtered by type |
//! | `chatMessages` | `id` unique | |
//! | | `serviceProviderId, customerId, timestamp -1, _id -1` | a conversation, latest page first |
//! | | `serviceProviderId, search.grams, timestamp -1, id` | search: one gram of the query, newest first |
//! | | `serviceProviderId, customerId, senderType, status` | marking a conversation read: its customer's unread messages |
//! | `conversations` | `serviceProviderId, customerId` unique | a conversation's summary, written with each chat write |
//! | | `serviceProviderId, lastKey -1` | the inbox, latest message first |
//! | | `serviceProviderId, unread, lastKey -1` | the unread conversations, latest first |
//! | | `serviceProviderId, waiting, waitingKey` | the waiting conversations, longest waiting first |
//! | `inboxTotals` | `_id` (the provider id) | the inbox's totals and the chat badges |
//! | `refreshTokens` | `tokenHash` unique; `expiresAt` TTL | refresh; expired tokens are removed by the server |
//! | `tokenFamilies` | `id` unique; `expiresAt` TTL | family revocation |
//! | `revokedTokens` | `jti` unique; `expiresAt` TTL | access-token revocation |
//! | `events` | `providerId, cursor` unique | the event log: replay after a cursor |
//! | | `providerId, writeId` | a retried write finding what its first attempt logged |
//! | | `at` | the `events-prune` job |
//! | `eventCounters` | `_id` (the provider id) | the provider's latest cursor |
//! | `idempotencyKeys` | `providerId, key` unique | a retried request with the same key |
//! | | `createdAt` | the `idempotency-keys-prune` job |
//! | `auditLog` | `id` unique; `serviceProviderId, at -1, id -1` | a provider's audit entries, newest first |
//! | `customers` | `expiryDate, status` | the status job: customers whose stored status lags behind |
//! | `outbox` | `id` unique | completing, failing, replaying a delivery |
//! | | `status, orderingKey, sequence, id` | the dispatcher: the first pending delivery of each conversation |
//! | | `status, deliveredAt` | pruning delivered entries |
//! | | `status, deadAt` | listing dead letters |
//! | | `expiresAt` | the dispatcher: deleting ephemeral deliveries that expired unsent |
//! | `leases` | `_id` (the lease's name) | one process at a time runs a scheduled job |
//! | `wechatBindings` | `providerId` unique | the provider's WeChat openid |
//! | `cannedReplies` | `id` unique | a reply's detail, update, delete |
//! | | `serviceProviderId, shortCode` unique | a short code once per provider; the list, by short code; the count |

use super::MongoStore;
use crate::error::{AppError, AppResult};
use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use std::time::Duration;

impl MongoStore {
    pub(super) async fn create_indexes(&self) -> AppResult<()> {
        let index = |name: &str, keys: Document| {
            IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
        };
        let unique = |name: &str, keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
                .build()
        };
        let expiring = |name: &str| {
            IndexModel::builder()
                .keys(doc! { "expiresAt": 1 })
                .options(IndexOptions::builder().name(name.to_owned()).expire_after(Duration::from_secs(0)).build())
                .build()
        };
        let plan: Vec<(&Collection<Document>, Vec<IndexModel>)> = vec![
            (
                &self.providers,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    unique("username_unique", doc! { "username": 1 }),
                    unique("email_unique", doc! { "email": 1 }),
                    index("created_username", doc! { "createdAt": 1, "username": 1 }),
                ],
            ),
            (
                &self.customers,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_updated", doc! { "serviceProviderId": 1, "updatedAt": -1, "id": 1 }),
                    index("provider_expiry", doc! { "serviceProviderId": 1, "expiryDate": 1 }),
                    index(
                        "provider_search",
                        doc! { "serviceProviderId": 1, "search.grams": 1, "updatedAt": -1, "id": 1 },
                    ),
                    index("expiry_status", doc! { "expiryDate": 1, "status": 1 }),
                ],
            ),
            (
                &self.tickets,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_updated", doc! { "serviceProviderId": 1, "updatedAt": -1, "id": 1 }),
                    index(
                        "provider_status_updated_id",
                        doc! { "serviceProviderId": 1, "status": 1, "updatedAt": -1, "id": 1 },
                    ),
                    index(
                        "provider_customer_updated",
                        doc! { "serviceProviderId": 1, "customerId": 1, "updatedAt": -1, "id": 1 },
                    ),
                    index(
                        "provider_type_updated",
                        doc! { "serviceProviderId": 1, "type": 1, "updatedAt": -1, "id": 1 },
                    ),
                    index("provider_customer_status", doc! { "serviceProviderId": 1, "customerId": 1, "status": 1 }),
                    index("customer_status", doc! { "customerId": 1, "status": 1 }),
                    index(
                        "provider_search",
                        doc! { "serviceProviderId": 1, "search.grams": 1, "updatedAt": -1, "id": 1 },
                    ),
                    index("provider_sla_breach", doc! { "serviceProviderId": 1, "slaBreachAt": 1, "id": 1 }),
                    index("sla_alert", doc! { "slaAlertAt": 1, "id": 1 }),
                ],
            ),
            (
                &self.ticket_history,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("ticket_order", doc! { "ticketId": 1, "ticketVersion": 1, "position": 1 }),
                    index("provider_search", doc! { "serviceProviderId": 1, "search.grams": 1, "ticketId": 1 }),
                ],
            ),
            (
                &self.notifications,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_created", doc! { "serviceProviderId": 1, "createdAt": -1, "id": -1 }),
                    index(
                        "provider_read_created_id",
                        doc! { "serviceProviderId": 1, "readStatus": 1, "createdAt": -1, "id": -1 },
                    ),
                    index(
                        "provider_type_created",
                        doc! { "serviceProviderId": 1, "type": 1, "createdAt": -1, "id": -1 },
                    ),
                ],
            ),
            (
                &self.chat,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index(
                        "conversation_time",
                        doc! { "serviceProviderId": 1, "customerId": 1, "timestamp": -1, "_id": -1 },
                    ),
                    index(
                        "provider_search",
                        doc! { "serviceProviderId": 1, "search.grams": 1, "timestamp": -1, "id": 1 },
                    ),
                    index(
                        "conversation_unread",
                        doc! { "serviceProviderId": 1, "customerId": 1, "senderType": 1, "status": 1 },
                    ),
                ],
            ),
            (
                &self.conversations,
                vec![
                    unique("provider_customer", doc! { "serviceProviderId": 1, "customerId": 1 }),
                    index("provider_last", doc! { "serviceProviderId": 1, "lastKey": -1 }),
                    index("provider_unread_last", doc! { "serviceProviderId": 1, "unread": 1, "lastKey": -1 }),
                    index("provider_waiting", doc! { "serviceProviderId": 1, "waiting": 1, "waitingKey": 1 }),
                ],
            ),
            (
                &self.refresh_tokens,
                vec![
                    unique("token_hash_unique", doc! { "tokenHash": 1 }),
                    index("provider", doc! { "providerId": 1 }),
                    expiring("expiry"),
                ],
            ),
            (&self.token_families, vec![unique("id_unique", doc! { "id": 1 }), expiring("expiry")]),
            (&self.revoked_tokens, vec![unique("jti_unique", doc! { "jti": 1 }), expiring("expiry")]),
            (
                &self.events,
                vec![
                    unique("provider_cursor", doc! { "providerId": 1, "cursor": 1 }),
                    index("provider_write", doc! { "providerId": 1, "writeId": 1 }),
                    index("at", doc! { "at": 1 }),
                ],
            ),
            (
                &self.idempotency_keys,
                vec![
                    unique("provider_key", doc! { "providerId": 1, "key": 1 }),
                    index("created", doc! { "createdAt": 1 }),
                ],
            ),
            (
                &self.audit_log,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_at", doc! { "serviceProviderId": 1, "at": -1, "id": -1 }),
                ],
            ),
            (
                &self.outbox,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("queue", doc! { "status": 1, "orderingKey": 1, "sequence": 1, "id": 1 }),
                    index("status_delivered", doc! { "status": 1, "deliveredAt": 1 }),
                    index("status_dead", doc! { "status": 1, "deadAt": 1 }),
                    index("expiring", doc! { "expiresAt": 1 }),
                ],
            ),
            (&self.wechat_bindings, vec![unique("provider_unique", doc! { "providerId": 1 })]),
            (
                &self.canned_replies,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    unique("provider_short_code", doc! { "serviceProviderId": 1, "shortCode": 1 }),
                ],
            ),
            // Created here so that the first transaction does not have to create it.
            (&self.event_counters, vec![index("cursor", doc! { "cursor": 1 })]),
        ];
        let superseded = [
            (&self.tickets, "provider_status_updated"),
            (&self.notifications, "provider_read_created"),
            (&self.customers, "provider_name"),
            (&self.customers, "provider_contact"),
        ];
        for (collection, name) in superseded {
            self.drop_superseded_index(collection, name).await?;
        }
        for (collection, indexes) in plan {
            let name = collection.name().to_owned();
            self.op(async { collection.create_indexes(indexes).await.map(drop) }).await.map_err(|e| match e {
                AppError::Internal(detail) => AppError::Internal(format!(
                    "cannot create the indexes of {name} (an index of the same name but another definition may \
                     exist; drop it and start again): {detail}"
                )),
                other => other,
            })?;
        }
        // A collection of one document a provider, read by `_id` alone: created here, as those
        // with indexes are, so that the first transaction does not have to create it.
        self.create_collection_if_missing(&self.inbox_totals).await
    }

    async fn create_collection_if_missing(&self, collection: &Collection<Document>) -> AppResult<()> {
        const NAMESPACE_EXISTS: i32 = 48;
        self.op(async {
            match self.database().create_collection(collection.name()).await {
                Err(error) if matches!(error.kind.as_ref(), ErrorKind::Command(e) if e.code == NAMESPACE_EXISTS) => {
                    Ok(())
                }
                other => other,
            }
        })
        .await
    }

    /// Drops an index that a longer one (its key with the list's tie-breaker added) replaced, so a
    /// database made by an earlier release does not keep maintaining it; gone already is fine.
    async fn drop_superseded_index(&self, collection: &Collection<Document>, name: &str) -> AppResult<()> {
        const NAMESPACE_NOT_FOUND: i32 = 26;
        const INDEX_NOT_FOUND: i32 = 27;
        self.op(async {
            match collection.drop_index(name).await {
                Err(error)
                    if matches!(error.kind.as_ref(), ErrorKind::Command(e)
                            if e.code == NAMESPACE_NOT_FOUND || e.code == INDEX_NOT_FOUND) =>
                {
                    Ok(())
                }
                other => other,
            }
        })
        .await
    }
}
