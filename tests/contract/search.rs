//! Search: one query over a provider's customers, tickets (with their replies) and chat messages,
//! matched as a literal substring of the folded text (Chinese of any length, Latin folded for case
//! and width, a phone by its last four digits), newest first with an exact total, never across
//! providers, and current the moment a write returns. The customer list's keyword filter has the
//! same semantics over name and contact person.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: chinese_queries_of_one_two_three_and_more_characters_find_every_kind_holding_them,
    latin_queries_are_folded_for_case_and_full_width_forms,
    a_customer_is_found_by_the_last_four_digits_of_the_phone_and_by_no_other_digits,
    another_providers_texts_are_never_found,
    the_kinds_filter_limits_what_is_searched_and_the_total_follows,
    hits_are_newest_first_and_ties_are_broken_by_id_across_kinds,
    the_total_is_exact_and_pages_cut_the_merged_list_at_their_edges,
    past_the_hit_limit_the_total_says_more_and_pages_end_at_the_limit,
    a_ticket_reply_is_found_as_soon_as_the_reply_is_stored,
    the_last_reply_of_a_ticket_whose_texts_exceed_ten_thousand_characters_is_found,
    a_chat_message_is_found_as_soon_as_it_is_stored,
    a_customer_saved_again_by_the_sync_is_found_by_its_new_text_and_not_its_old,
    regex_and_sql_looking_characters_match_only_themselves,
    the_customer_keyword_filter_finds_two_chinese_characters_in_name_or_contact_person_only);

const ALL: &[SearchKind] = &SearchKind::ALL;

async fn search(store: &SharedStore, provider: &Id, query: &str, kinds: &[SearchKind]) -> Page<SearchHit> {
    search_page(store, provider, query, kinds, page(1, 100)).await
}

async fn search_page(
    store: &SharedStore,
    provider: &Id,
    query: &str,
    kinds: &[SearchKind],
    request: PageRequest,
) -> Page<SearchHit> {
    store.search(provider, &SearchQuery::new(query), kinds, request).await.expect("the search answers")
}

/// The hits as (kind, id), in the order found.
fn found(page: &Page<SearchHit>) -> Vec<(SearchKind, Id)> {
    page.items.iter().map(|hit| (hit.kind, hit.id.clone())).collect()
}

fn customer_named(provider: &Id, name: &str, updated: i64) -> Customer {
    customer(provider, name, updated)
}

fn ticket_titled(customer: &Customer, title: &str, content: &str, created: i64) -> Ticket {
    Ticket { title: title.to_owned(), content: content.to_owned(), ..ticket(customer, created) }
}

async fn store_ticket(store: &SharedStore, ticket: &Ticket) {
    let notification = ticket_notification(ticket, 0);
    store.insert_ticket(ticket, &notification, None, &[]).await.expect("the ticket is stored");
}

fn message_saying(customer: &Customer, content: &str, minutes: i64) -> ChatMessage {
    ChatMessage { content: content.to_owned(), ..chat(customer, ChatSender::Customer, minutes) }
}

async fn store_message(store: &SharedStore, message: &ChatMessage) {
    store.insert_chat_message(message, None, &[]).await.expect("the message is stored");
}

/// Adds a reply saying `content` to `ticket` (as stored), at `minutes`.
async fn reply(store: &SharedStore, ticket: &Ticket, content: &str, minutes: i64) -> Ticket {
    let mut change = ticket_change(ticket, TicketStatus::Processing, minutes, Vec::new());
    change.appended_history = vec![HistoryEntry { content: content.to_owned(), ..history("reply", minutes) }];
    store.apply_ticket_change(&change).await.expect("the change is stored").expect("the change applies");
    store.ticket(&ticket.service_provider_id, &ticket.id).await.unwrap().expect("the ticket is there")
}

pub async fn chinese_queries_of_one_two_three_and_more_characters_find_every_kind_holding_them(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "杭州云仓商贸有限公司", 10);
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "云仓商贸库存盘点异常", "盘点数据对不上", 20);
    store_ticket(&store, &ticket).await;
    let message = message_saying(&customer, "请问云仓商贸的库存什么时候到", 30);
    store_message(&store, &message).await;
    let everything = vec![
        (SearchKind::Chat, message.id.clone()),
        (SearchKind::Ticket, ticket.id.clone()),
        (SearchKind::Customer, customer.id.clone()),
    ];

    for query in ["贸", "商贸", "云仓商", "云仓商贸"] {
        let hits = search(&store, &provider, query, ALL).await;
        assert_eq!((hits.total, found(&hits)), (3, everything.clone()), "{query}");
    }
    let hits = search(&store, &provider, "商贸有限公司", ALL).await;
    assert_eq!((hits.total, found(&hits)), (1, vec![(SearchKind::Customer, customer.id.clone())]));
    let hits = search(&store, &provider, "库存盘点异常", ALL).await;
    assert_eq!(found(&hits), vec![(SearchKind::Ticket, ticket.id.clone())]);
    assert_eq!(hits.items[0].matched_text, "云仓商贸库存盘点异常", "the title, the first text that matches");
    assert_eq!(hits.items[0].customer_id, customer.id);
    assert_eq!(hits.items[0].at, ticket.updated_at);
    let hits = search(&store, &provider, "数据对不上", ALL).await;
    assert_eq!(hits.items.iter().map(|h| h.matched_text.as_str()).collect::<Vec<_>>(), vec!["盘点数据对不上"]);
    let hits = search(&store, &provider, "库存", ALL).await;
    assert_eq!(found(&hits), everything[..2].to_vec(), "the chat message and the ticket");
    assert_eq!(hits.items[0].matched_text, message.content);
    assert_eq!(hits.items[0].at, message.timestamp);
    for absent in ["商城", "贸商", "云仓库", "杭州云仓商贸有限公司总部"] {
        assert_eq!(search(&store, &provider, absent, ALL).await.total, 0, "{absent}");
    }
}

pub async fn latin_queries_are_folded_for_case_and_full_width_forms(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "ＡＢＣ Store 商贸", 10);
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "ERP Login 失败", "VPN 断开", 20);
    store_ticket(&store, &ticket).await;

    for query in ["abc", "ABC", "ａｂｃ", "STORE", "ｓｔｏｒｅ", "c s", "Ｃ　Ｓ", "c store 商"] {
        let hits = search(&store, &provider, query, ALL).await;
        assert_eq!(found(&hits), vec![(SearchKind::Customer, customer.id.clone())], "{query}");
        assert_eq!(hits.items[0].matched_text, "ＡＢＣ Store 商贸", "the text as stored");
    }
    for query in ["erp login", "ＥＲＰ", "vpn"] {
        let hits = search(&store, &provider, query, ALL).await;
        assert_eq!(found(&hits), vec![(SearchKind::Ticket, ticket.id.clone())], "{query}");
    }
    for absent in ["abd", "stores", "erplogin"] {
        assert_eq!(search(&store, &provider, absent, ALL).await.total, 0, "{absent}");
    }
}

pub async fn a_customer_is_found_by_the_last_four_digits_of_the_phone_and_by_no_other_digits(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = Customer { phone: "138-1234-5678".to_owned(), ..customer_named(&provider, "电话客户", 10) };
    store.insert_customer(&customer).await.unwrap();

    for query in ["5678", "678", "8"] {
        let hits = search(&store, &provider, query, &[SearchKind::Customer]).await;
        assert_eq!(found(&hits), vec![(SearchKind::Customer, customer.id.clone())], "{query}");
        assert_eq!(hits.items[0].matched_text, "5678", "the digits searched, not the whole number");
    }
    for hidden in ["1234", "138", "13812345678", "45678", "4-5678"] {
        assert_eq!(search(&store, &provider, hidden, &[SearchKind::Customer]).await.total, 0, "{hidden}");
    }
}

pub async fn another_providers_texts_are_never_found(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let of_a = customer_named(&a, "甲方商贸", 10);
    let of_b = customer_named(&b, "乙方独有商贸", 11);
    for c in [&of_a, &of_b] {
        store.insert_customer(c).await.unwrap();
    }
    store_ticket(&store, &ticket_titled(&of_b, "乙方独有工单", "乙方独有内容", 12)).await;
    let b_ticket = ticket_titled(&of_b, "普通工单", "普通内容", 13);
    store_ticket(&store, &b_ticket).await;
    reply(&store, &b_ticket, "乙方独有回复", 14).await;
    store_message(&store, &message_saying(&of_b, "乙方独有消息", 15)).await;

    for query in ["独有", "乙方独有", "乙", "独有回复"] {
        assert_eq!(search(&store, &a, query, ALL).await.total, 0, "{query} is demo-b's only");
    }
    assert_eq!(search(&store, &b, "独有", ALL).await.total, 4);
    let shared = search(&store, &a, "商贸", ALL).await;
    assert_eq!(found(&shared), vec![(SearchKind::Customer, of_a.id.clone())], "only the provider's own");
}

pub async fn the_kinds_filter_limits_what_is_searched_and_the_total_follows(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "库存客户", 10);
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "库存工单", "内容", 20);
    store_ticket(&store, &ticket).await;
    let message = message_saying(&customer, "库存消息", 30);
    store_message(&store, &message).await;

    let tickets = search(&store, &provider, "库存", &[SearchKind::Ticket]).await;
    assert_eq!((tickets.total, found(&tickets)), (1, vec![(SearchKind::Ticket, ticket.id.clone())]));
    let others = search(&store, &provider, "库存", &[SearchKind::Customer, SearchKind::Chat]).await;
    let expected = vec![(SearchKind::Chat, message.id.clone()), (SearchKind::Customer, customer.id.clone())];
    assert_eq!((others.total, found(&others)), (2, expected));
    assert_eq!(search(&store, &provider, "库存", ALL).await.total, 3);
}

pub async fn hits_are_newest_first_and_ties_are_broken_by_id_across_kinds(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let old = customer_named(&provider, "同时商贸甲", 10);
    let tied = customer_named(&provider, "同时商贸乙", 50);
    for c in [&old, &tied] {
        store.insert_customer(c).await.unwrap();
    }
    let ticket = ticket_titled(&old, "同时商贸工单", "内容", 50);
    store_ticket(&store, &ticket).await;
    let tied_message = message_saying(&old, "同时商贸消息", 50);
    let newest = message_saying(&old, "同时商贸最新", 60);
    for m in [&tied_message, &newest] {
        store_message(&store, m).await;
    }

    let mut ties = vec![
        (SearchKind::Customer, tied.id.clone()),
        (SearchKind::Ticket, ticket.id.clone()),
        (SearchKind::Chat, tied_message.id.clone()),
    ];
    ties.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    let mut expected = vec![(SearchKind::Chat, newest.id.clone())];
    expected.extend(ties);
    expected.push((SearchKind::Customer, old.id.clone()));
    let hits = search(&store, &provider, "同时商贸", ALL).await;
    assert_eq!((hits.total, found(&hits)), (5, expected));
    let times: Vec<Timestamp> = hits.items.iter().map(|h| h.at).collect();
    assert_eq!(times, vec![at(60), at(50), at(50), at(50), at(10)]);
}

pub async fn past_the_hit_limit_the_total_says_more_and_pages_end_at_the_limit(store: SharedStore) {
    use provider_desk::domain::search::SEARCH_HIT_LIMIT;
    let provider = stored_provider(&store).await;
    let owner = customer_named(&provider, "上限客户", 1);
    store.insert_customer(&owner).await.unwrap();
    let limit = SEARCH_HIT_LIMIT as i64;
    for minute in 0..limit + 3 {
        store_message(&store, &message_saying(&owner, &format!("上限测试{minute}"), 10 + minute)).await;
    }
    for minute in 0..2 {
        store_ticket(&store, &ticket_titled(&owner, "上限测试工单", "内容", 5 + minute)).await;
    }

    let first = search_page(&store, &provider, "上限测试", ALL, page(1, 10)).await;
    assert!(first.total > SEARCH_HIT_LIMIT, "more than the limit: {}", first.total);
    let newest: Vec<&str> = first.items.iter().map(|hit| hit.matched_text.as_str()).collect();
    assert_eq!(newest[0], format!("上限测试{}", limit + 2), "newest first");
    let last = search_page(&store, &provider, "上限测试", ALL, page(limit / 10, 10)).await;
    assert_eq!(last.items.len(), 10, "the page that ends at the limit is full");
    let past = search_page(&store, &provider, "上限测试", ALL, page(limit / 10 + 1, 10)).await;
    assert!(past.items.is_empty(), "a page past the limit is empty: {:?}", past.items.len());

    let under = search(&store, &provider, "上限测试工单", ALL).await;
    assert_eq!((under.total, under.items.len()), (2, 2), "under the limit the total is exact");
}

pub async fn the_total_is_exact_and_pages_cut_the_merged_list_at_their_edges(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let owner = customer_named(&provider, "无关客户", 1);
    store.insert_customer(&owner).await.unwrap();
    for minute in [5, 25, 45, 65, 85] {
        store.insert_customer(&customer_named(&provider, &format!("分页商贸{minute}"), minute)).await.unwrap();
    }
    for minute in [15, 35, 55, 75] {
        store_ticket(&store, &ticket_titled(&owner, "分页商贸工单", "内容", minute)).await;
    }
    for minute in [20, 40, 60] {
        store_message(&store, &message_saying(&owner, "分页商贸消息", minute)).await;
    }
    store_ticket(&store, &ticket_titled(&owner, "别的工单", "别的内容", 90)).await;
    store_message(&store, &message_saying(&owner, "别的消息", 95)).await;

    let whole = search(&store, &provider, "分页商贸", ALL).await;
    assert_eq!((whole.total, whole.items.len()), (12, 12));
    let times: Vec<Timestamp> = whole.items.iter().map(|h| h.at).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);

    let mut paged = Vec::new();
    for (number, expected_len) in [(1, 5), (2, 5), (3, 2), (4, 0)] {
        let one = search_page(&store, &provider, "分页商贸", ALL, page(number, 5)).await;
        assert_eq!((one.total, one.items.len()), (12, expected_len), "page {number}");
        paged.extend(found(&one));
    }
    assert_eq!(paged, found(&whole), "the pages, one after another, are the whole list");
    let last = search_page(&store, &provider, "分页商贸", ALL, page(12, 1)).await;
    assert_eq!(found(&last), found(&whole)[11..].to_vec());
    let past = search_page(&store, &provider, "分页商贸", ALL, page(13, 1)).await;
    assert_eq!((past.total, past.items.len()), (12, 0));
    let none = search(&store, &provider, "不存在的词", ALL).await;
    assert_eq!((none.total, none.items.len()), (0, 0));
}

pub async fn a_ticket_reply_is_found_as_soon_as_the_reply_is_stored(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "回复客户", 1);
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "开票问题", "请处理", 10);
    store_ticket(&store, &ticket).await;
    assert_eq!(search(&store, &provider, "发票抬头", ALL).await.total, 0);

    let replied = reply(&store, &ticket, "已为您更新发票抬头信息", 20).await;
    for query in ["发票抬头", "抬头", "头", "更新发票抬头信息"] {
        let hits = search(&store, &provider, query, ALL).await;
        assert_eq!(found(&hits), vec![(SearchKind::Ticket, ticket.id.clone())], "{query}");
        assert_eq!(hits.items[0].matched_text, "已为您更新发票抬头信息");
        assert_eq!(hits.items[0].at, at(20), "the reply moved the ticket's time");
    }
    reply(&store, &replied, "第二次回复发票抬头", 30).await;
    let hits = search(&store, &provider, "发票抬头", ALL).await;
    assert_eq!(hits.total, 1, "one hit per ticket however many replies match");
    assert_eq!(hits.items[0].matched_text, "已为您更新发票抬头信息", "the oldest matching reply");
    let title_first = search(&store, &provider, "开票", ALL).await;
    assert_eq!(title_first.items[0].matched_text, "开票问题");
    assert_eq!(search(&store, &provider, "抬头信息第二", ALL).await.total, 0, "no match across two replies");
}

/// Every reply is indexed, however long the ticket's texts already are (an index of a ticket's
/// texts capped at 10,000 characters once hid the reply after 5,000 of content and one of 5,000).
pub async fn the_last_reply_of_a_ticket_whose_texts_exceed_ten_thousand_characters_is_found(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "长工单客户", 1);
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "长工单", &"内".repeat(5_000), 10);
    store_ticket(&store, &ticket).await;
    let mut current = reply(&store, &ticket, &"长".repeat(5_000), 20).await;
    current = reply(&store, &current, &format!("{}中间的回复", "短".repeat(3_000)), 30).await;
    reply(&store, &current, "最后一条回复找得到", 40).await;

    for (query, matched) in [("最后一条回复", "最后一条回复找得到"), ("找得到", "最后一条回复找得到")]
    {
        let hits = search(&store, &provider, query, ALL).await;
        assert_eq!(found(&hits), vec![(SearchKind::Ticket, ticket.id.clone())], "{query}");
        assert_eq!((hits.items[0].matched_text.as_str(), hits.items[0].at), (matched, at(40)));
    }
    let middle = search(&store, &provider, "中间的回复", &[SearchKind::Ticket]).await;
    assert_eq!((middle.total, found(&middle)), (1, vec![(SearchKind::Ticket, ticket.id.clone())]));
    assert_eq!(search(&store, &provider, "长长", ALL).await.total, 1, "one hit however many texts match");
}

pub async fn a_chat_message_is_found_as_soon_as_it_is_stored(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = customer_named(&provider, "聊天客户", 1);
    store.insert_customer(&customer).await.unwrap();
    assert_eq!(search(&store, &provider, "退款进度", ALL).await.total, 0);
    let message = message_saying(&customer, "请问退款进度如何", 10);
    store_message(&store, &message).await;

    let hits = search(&store, &provider, "退款进度", ALL).await;
    assert_eq!(found(&hits), vec![(SearchKind::Chat, message.id.clone())]);
    let hit = &hits.items[0];
    assert_eq!((hit.customer_id.clone(), hit.matched_text.as_str(), hit.at), (customer.id, "请问退款进度如何", at(10)));
}

pub async fn a_customer_saved_again_by_the_sync_is_found_by_its_new_text_and_not_its_old(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let before = customer_named(&provider, "旧名称商贸", 10);
    store.insert_customer(&before).await.unwrap();
    assert_eq!(search(&store, &provider, "旧名称", ALL).await.total, 1);

    let after = Customer {
        name: "新名称科技".to_owned(),
        contact_person: "王五".to_owned(),
        phone: "13700009999".to_owned(),
        updated_at: at(40),
        ..before.clone()
    };
    assert_eq!(store.save_customers(std::slice::from_ref(&after)).await.unwrap(), vec![true]);

    for old in ["旧名称", "旧", "李四", "1111"] {
        assert_eq!(search(&store, &provider, old, ALL).await.total, 0, "{old} is no longer the customer's");
    }
    for new in ["新名称", "名称科", "王五", "9999"] {
        let hits = search(&store, &provider, new, ALL).await;
        assert_eq!(found(&hits), vec![(SearchKind::Customer, before.id.clone())], "{new}");
        assert_eq!(hits.items[0].at, at(40), "the sync moved the customer's time");
    }
}

pub async fn regex_and_sql_looking_characters_match_only_themselves(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let names =
        ["折扣.*优惠", "100%达标", "a_b公司", "O'Brien商行", "\"引号\"公司", "(括号)公司", "星*号", "云仓与仓商"];
    let mut by_name = std::collections::HashMap::new();
    for (minute, name) in names.iter().enumerate() {
        let c = customer_named(&provider, name, minute as i64);
        store.insert_customer(&c).await.unwrap();
        by_name.insert(*name, c.id);
    }
    let only = |names: &[&str]| -> Vec<Id> {
        let mut ids: Vec<Id> = names.iter().map(|name| by_name[name].clone()).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    };
    let searched = |query: &'static str| {
        let (store, provider) = (store.clone(), provider.clone());
        async move {
            let mut ids: Vec<Id> =
                search(&store, &provider, query, ALL).await.items.into_iter().map(|h| h.id).collect();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            ids
        }
    };
    assert_eq!(searched(".*").await, only(&["折扣.*优惠"]));
    assert_eq!(searched("%").await, only(&["100%达标"]));
    assert_eq!(searched("_").await, only(&["a_b公司"]));
    assert_eq!(searched("'").await, only(&["O'Brien商行"]));
    assert_eq!(searched("\"").await, only(&["\"引号\"公司"]));
    assert_eq!(searched("(").await, only(&["(括号)公司"]));
    assert_eq!(searched("*").await, only(&["折扣.*优惠", "星*号"]));
    assert_eq!(searched("a_b").await, only(&["a_b公司"]));
    assert_eq!(searched("a%b").await, Vec::<Id>::new());
    assert_eq!(searched("' OR '1'='1").await, Vec::<Id>::new());
    assert_eq!(searched("云仓商").await, Vec::<Id>::new(), "both pairs, but not the phrase");
    assert_eq!(searched("仓商").await, only(&["云仓与仓商"]));
}

pub async fn the_customer_keyword_filter_finds_two_chinese_characters_in_name_or_contact_person_only(
    store: SharedStore,
) {
    let provider = stored_provider(&store).await;
    let by_name = customer_named(&provider, "杭州商贸", 10);
    let by_contact =
        Customer { contact_person: "商贸联系人".to_owned(), ..customer_named(&provider, "甲公司", 20) };
    let by_phone = Customer { phone: "13800005678".to_owned(), ..customer_named(&provider, "乙公司", 30) };
    let latin = customer_named(&provider, "ＡＢ Trade", 40);
    let other = customer_named(&stored_provider(&store).await, "别家商贸", 50);
    for c in [&by_name, &by_contact, &by_phone, &latin, &other] {
        store.insert_customer(c).await.unwrap();
    }
    let keyword = |text: &'static str| {
        let (store, provider) = (store.clone(), provider.clone());
        async move {
            let filter = CustomerFilter { keyword: Some(text.to_owned()), ..CustomerFilter::default() };
            let listed = store.list_customers(&provider, &filter, page(1, 10)).await.unwrap();
            (listed.total, listed.items.into_iter().map(|c| c.id).collect::<Vec<_>>())
        }
    };

    assert_eq!(keyword("商贸").await, (2, vec![by_contact.id.clone(), by_name.id.clone()]));
    assert_eq!(keyword("州商").await, (1, vec![by_name.id.clone()]));
    assert_eq!(keyword("5678").await, (0, vec![]), "the keyword looks at name and contact person only");
    assert_eq!(keyword("ab t").await, (1, vec![latin.id.clone()]));
    assert_eq!(keyword("ＴＲＡＤＥ").await, (1, vec![latin.id.clone()]));
    assert_eq!(keyword("商城").await, (0, vec![]));
}

/// A MongoDB database written by the release before search (documents without their `search`
/// fields, a reply without its provider, a history embedded in the ticket by an older one) gets
/// its index when the store opens, and opening again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mongodb_database_written_before_search_is_indexed_when_the_store_opens() {
    use mongodb::bson::{doc, DateTime, Document};
    use provider_desk::store::mongo::MongoStore;
    use std::sync::Arc;

    let crate::support::Backend::Mongo { mongodb_uri, .. } = crate::support::Backend::from_env() else { return };
    let fresh = crate::Fresh::open().await;
    let (store, database) = (fresh.store.clone(), fresh.mongo.clone().expect("the MongoDB store").database().clone());
    let provider = stored_provider(&store).await;
    let customer = Customer { phone: "13800004321".to_owned(), ..customer_named(&provider, "老数据商贸", 10) };
    store.insert_customer(&customer).await.unwrap();
    let ticket = ticket_titled(&customer, "老工单标题", "老工单内容", 20);
    store_ticket(&store, &ticket).await;
    reply(&store, &ticket, "老版本写下的回复", 30).await;
    let legacy = ticket_titled(&customer, "更老的工单", "内容", 40);
    store_ticket(&store, &legacy).await;
    let message = message_saying(&customer, "老版本的聊天记录", 50);
    store_message(&store, &message).await;

    let collection = |name: &str| database.collection::<Document>(name);
    // A database of an older release: no search fields, and no marker of a completed build.
    collection("migrations").delete_many(doc! {}).await.unwrap();
    for name in ["customers", "tickets", "chatMessages"] {
        collection(name).update_many(doc! {}, doc! { "$unset": { "search": "" } }).await.unwrap();
    }
    let unset = doc! { "$unset": { "search": "", "serviceProviderId": "" } };
    collection("ticketHistory").update_many(doc! {}, unset).await.unwrap();
    let embedded = doc! {
        "id": "h-embedded", "operatorId": "sp", "operatorName": "张三", "action": "reply",
        "content": "内嵌在工单里的旧回复", "timestamp": DateTime::now(),
    };
    let push = doc! { "$push": { "processingHistory": embedded } };
    collection("tickets").update_one(doc! { "id": legacy.id.as_str() }, push).await.unwrap();
    let queries = ["老数据", "4321", "老工单标题", "老版本写下的回复", "写下", "内嵌在工单里", "聊天记录"];
    for query in queries {
        assert_eq!(search(&store, &provider, query, ALL).await.total, 0, "{query}: no index yet");
    }

    let settings = crate::mongo_settings(database.name());
    let expected = [
        (SearchKind::Customer, customer.id.clone()),
        (SearchKind::Customer, customer.id.clone()),
        (SearchKind::Ticket, ticket.id.clone()),
        (SearchKind::Ticket, ticket.id.clone()),
        (SearchKind::Ticket, ticket.id.clone()),
        (SearchKind::Ticket, legacy.id.clone()),
        (SearchKind::Chat, message.id.clone()),
    ];
    for _ in 0..2 {
        let reopened: SharedStore =
            Arc::new(MongoStore::connect(&mongodb_uri, &settings).await.expect("the store opens again"));
        for (query, hit) in queries.iter().zip(&expected) {
            let hits = search(&reopened, &provider, query, ALL).await;
            assert_eq!(found(&hits), vec![hit.clone()], "{query}");
        }
        let customers = reopened
            .list_customers(
                &provider,
                &CustomerFilter { keyword: Some("商贸".to_owned()), ..Default::default() },
                page(1, 10),
            )
            .await
            .unwrap();
        assert_eq!(customers.total, 1, "the keyword filter finds the customer too");
    }
    fresh.close().await;
}
