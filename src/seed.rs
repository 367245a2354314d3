//! Demo data: two providers (`demo-a`, `demo-b`, password `demo12345`) with realistic customers,
//! tickets of every type and status with their history, notifications, chat logs and canned
//! replies (quick replies) with placeholders.
//!
//! The data is generated deterministically relative to the current time, so customer statuses
//! cover active, expiring and expired whenever it is seeded. Ids follow the spec's examples
//! (`sp001`, `c001`, `t001`, `m001`, `cm001`, `h001`; canned replies `cr001`).

use crate::domain::{
    now, CannedReply, ChatMessage, ChatSender, ChatStatus, Customer, CustomerStatus, EscalationStatus, HistoryEntry,
    Id, Notification, NotificationType, ProviderStatus, ReadStatus, ServiceProvider, Ticket, TicketStatus, TicketType,
    Timestamp, UsageMetrics,
};
use crate::error::AppResult;
use crate::service::Services;
use chrono::Duration;

pub const DEMO_PASSWORD: &str = "demo12345";
pub const DEMO_USERNAMES: [&str; 2] = ["demo-a", "demo-b"];
const CUSTOMERS_PER_PROVIDER: usize = 30;
const TICKETS_PER_PROVIDER: usize = 36;

struct DemoProvider {
    id: &'static str,
    username: &'static str,
    name: &'static str,
    contact_person: &'static str,
    phone: &'static str,
    email: &'static str,
    region: &'static str,
    /// Where its customers are.
    city: &'static str,
    districts: [&'static str; 4],
}

const PROVIDERS: [DemoProvider; 2] = [
    DemoProvider {
        id: "sp001",
        username: "demo-a",
        name: "北京智联进销存服务中心",
        contact_person: "张三",
        phone: "13812345678",
        email: "service-a@example.com",
        region: "北京市朝阳区",
        city: "北京市",
        districts: ["朝阳区", "海淀区", "丰台区", "通州区"],
    },
    DemoProvider {
        id: "sp002",
        username: "demo-b",
        name: "上海云仓软件服务有限公司",
        contact_person: "李娜",
        phone: "13987650002",
        email: "service-b@example.com",
        region: "上海市浦东新区",
        city: "上海市",
        districts: ["浦东新区", "闵行区", "徐汇区", "嘉定区"],
    },
];

const COMPANY_PREFIXES: [&str; 15] = [
    "鑫源", "恒达", "华美", "永丰", "金诚", "瑞祥", "宏图", "佳和", "盛世", "天润", "福满", "顺通", "绿源", "新锐",
    "康泰",
];
const COMPANY_KINDS: [&str; 6] =
    ["商贸有限公司", "食品批发部", "建材经营部", "五金机电有限公司", "服装贸易有限公司", "日用百货超市"];
const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];
const GIVEN_NAMES: [&str; 10] = ["伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "军"];
const VERSIONS: [&str; 4] = ["基础版", "标准版", "专业版", "企业版"];
const SUPPORT_AGENTS: [(&str, &str); 3] = [("cs001", "客服小王"), ("cs002", "客服小李"), ("cs003", "技术支持老陈")];

const TICKET_SUBJECTS: [(TicketType, &str, &str); 12] = [
    (TicketType::SystemIssue, "系统登录失败", "尝试登录系统时提示账号或密码错误，但确认账号密码正确。"),
    (TicketType::SystemIssue, "库存数量显示异常", "盘点后系统库存与实际库存不一致，部分商品显示为负数。"),
    (TicketType::ProductSuggestion, "希望增加批量打印功能", "出库单每天上百张，希望能批量打印并自动按客户分组。"),
    (TicketType::ProductSuggestion, "报表支持导出Excel", "月度销售报表目前只能在线查看，希望能导出为Excel文件。"),
    (TicketType::TrainingImplementation, "新员工操作培训", "门店新来了三名员工，需要安排一次进销存基础操作培训。"),
    (TicketType::TrainingImplementation, "扫码枪对接实施", "新采购的扫码枪无法在入库界面识别条码，需要上门实施。"),
    (TicketType::RenewalQuestion, "续费价格咨询", "明年续费是否有优惠？想了解升级到专业版的差价。"),
    (TicketType::RenewalQuestion, "发票开具问题", "续费后需要开具增值税专用发票，请协助处理。"),
    (TicketType::IssueEscalation, "数据同步长时间失败", "门店与总部的数据同步已失败两天，影响了订货。"),
    (TicketType::IssueEscalation, "打印模板错乱", "升级后打印模板全部错乱，影响正常发货，需要紧急处理。"),
    (TicketType::Complaint, "客服响应太慢", "上周提交的问题三天才有人回复，希望改进响应速度。"),
    (TicketType::Complaint, "升级后功能缺失", "系统升级后找不到原来的退货入口，影响日常业务。"),
];

const CHAT_SCRIPTS: [[&str; 4]; 4] = [
    [
        "您好，我遇到了登录问题",
        "您好，请问具体是什么登录问题？",
        "提示密码错误，但密码是对的",
        "请尝试重置密码，操作步骤如下：点击登录页的“忘记密码”。",
    ],
    [
        "请问怎么导出本月的销售报表？",
        "您好，在报表中心选择销售报表，右上角有导出按钮。",
        "找到了，谢谢！",
        "不客气，有问题随时联系我们。",
    ],
    [
        "入库的时候扫码枪没反应",
        "请确认扫码枪是否设置为键盘模式。",
        "怎么设置键盘模式？",
        "扫描说明书第二页的“USB键盘”条码即可。",
    ],
    ["我们想续费，能优惠吗？", "您好，年付续费可享九折优惠。", "升级专业版多少钱？", "我稍后把专业版的报价单发给您。"],
];

/// Each demo provider's canned replies: short code, title, content (placeholders unfilled).
const CANNED_REPLIES: [(&str, &str, &str); 4] = [
    ("greeting", "问候", "您好{customerName}，我是{providerName}的客服，请问有什么可以帮您？"),
    (
        "renewal",
        "续费提醒",
        "{contactPerson}您好，贵公司（{customerName}）的软件服务即将到期，续费请联系{providerName}。",
    ),
    ("thanks", "感谢", "感谢{customerName}的耐心等待，问题已处理完毕，如有其他问题请随时联系{providerName}。"),
    ("remote", "远程协助", "{contactPerson}您好，请打开远程协助工具并把连接码发给我们，我们马上为您排查。"),
];

/// Seeds the demo providers into an empty store; does nothing if any provider exists.
pub async fn seed_demo_if_empty(services: &Services) -> AppResult<bool> {
    if services.store.count_providers().await? > 0 {
        return Ok(false);
    }
    seed_demo(services).await?;
    Ok(true)
}

/// Seeds the demo providers and their data.
pub async fn seed_demo(services: &Services) -> AppResult<()> {
    let at = now();
    let password_hash = services.auth.hash_password(DEMO_PASSWORD).await?;
    let mut ids = IdCounters::default();
    for (index, demo) in PROVIDERS.iter().enumerate() {
        let provider = ServiceProvider {
            id: Id::from_stored(demo.id.to_owned()),
            username: demo.username.to_owned(),
            name: demo.name.to_owned(),
            contact_person: demo.contact_person.to_owned(),
            phone: demo.phone.to_owned(),
            email: demo.email.to_owned(),
            region: demo.region.to_owned(),
            status: ProviderStatus::Active,
            created_at: at - Duration::days(720),
            updated_at: at - Duration::days(30),
        };
        services.store.insert_provider(&provider, &password_hash).await?;
        let mut random = Lcg(0x5eed_0000 + index as u64);
        let customers = demo_customers(demo, &provider, at, &mut random, &mut ids);
        for customer in &customers {
            services.store.insert_customer(customer).await?;
        }
        for number in 0..TICKETS_PER_PROVIDER {
            let customer = &customers[random.below(customers.len())];
            let (ticket, notification) = demo_ticket(&provider, customer, number, at, &mut random, &mut ids);
            services.store.insert_ticket(&ticket, &notification, None, &[]).await?;
        }
        for notification in demo_alerts(&provider, &customers, at, &mut ids) {
            services.store.insert_notification(&notification).await?;
        }
        for (script, customer) in CHAT_SCRIPTS.iter().cycle().zip(customers.iter().take(8)) {
            for message in demo_chat(&provider, customer, script, at, &mut random, &mut ids) {
                services.store.insert_chat_message(&message, None, &[]).await?;
            }
        }
        for reply in demo_canned_replies(&provider, at, &mut ids) {
            services.store.insert_canned_reply(&reply).await?;
        }
        tracing::info!(provider = demo.username, customers = customers.len(), "seeded demo data");
    }
    Ok(())
}

/// Sequential ids in the spec's style, unique across providers.
#[derive(Default)]
struct IdCounters {
    customer: usize,
    ticket: usize,
    history: usize,
    notification: usize,
    chat: usize,
    canned_reply: usize,
}

fn next(counter: &mut usize, prefix: &str) -> Id {
    *counter += 1;
    Id::from_stored(format!("{prefix}{:03}", *counter))
}

/// A small deterministic generator, so every seeding yields the same data.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as usize) as i64
    }
}

fn demo_customers(
    demo: &DemoProvider,
    provider: &ServiceProvider,
    at: Timestamp,
    random: &mut Lcg,
    ids: &mut IdCounters,
) -> Vec<Customer> {
    (0..CUSTOMERS_PER_PROVIDER)
        .map(|i| {
            let id = next(&mut ids.customer, "c");
            // One in five expired, one in five expiring, the rest active.
            let expiry_date = match i % 5 {
                0 => at - Duration::days(random.between(3, 200)),
                1 => at + Duration::days(random.between(2, 28)),
                _ => at + Duration::days(random.between(45, 540)),
            };
            let purchase_date = expiry_date - Duration::days(365 * random.between(1, 3));
            let engaged = i % 5 != 0;
            let metric = |random: &mut Lcg| {
                if engaged {
                    random.between(62, 99) as u8
                } else {
                    random.between(25, 75) as u8
                }
            };
            let usage = UsageMetrics {
                login_frequency: metric(random),
                feature_usage: metric(random),
                data_input: metric(random),
                training_completion: metric(random),
            };
            let name = format!(
                "{}{}{}",
                demo.city.trim_end_matches('市'),
                COMPANY_PREFIXES[(i + random.below(3)) % COMPANY_PREFIXES.len()],
                COMPANY_KINDS[random.below(COMPANY_KINDS.len())]
            );
            let contact_person =
                format!("{}{}", SURNAMES[random.below(SURNAMES.len())], GIVEN_NAMES[random.below(GIVEN_NAMES.len())]);
            let last_active_time = at - Duration::hours(random.between(1, 24 * 20));
            Customer {
                service_provider_id: provider.id.clone(),
                service_provider_name: provider.name.clone(),
                name,
                contact_person,
                phone: format!("13{}{:08}", 5 + i % 5, 10_000_000 + random.below(89_999_999)),
                email: format!("contact{}@customer{}.example.com", i + 1, id.as_str()),
                region: format!("{}{}", demo.city, demo.districts[random.below(demo.districts.len())]),
                software_version: VERSIONS[random.below(VERSIONS.len())].to_owned(),
                port_count: [5, 10, 20, 50, 100][random.below(5)],
                purchase_date,
                expiry_date,
                stored_status: CustomerStatus::at(expiry_date, at),
                usage,
                usage_updated_at: at - Duration::days(1),
                unresolved_issues: 0,
                last_active_time,
                created_at: purchase_date,
                updated_at: last_active_time,
                id,
            }
        })
        .collect()
}

fn demo_ticket(
    provider: &ServiceProvider,
    customer: &Customer,
    number: usize,
    at: Timestamp,
    random: &mut Lcg,
    ids: &mut IdCounters,
) -> (Ticket, Notification) {
    let (ticket_type, title, content) = TICKET_SUBJECTS[number % TICKET_SUBJECTS.len()];
    let status = [TicketStatus::Open, TicketStatus::Processing, TicketStatus::Resolved][number % 3];
    let created_at = at - Duration::hours(random.between(6, 24 * 60));
    let (agent_id, agent_name) = SUPPORT_AGENTS[random.below(SUPPORT_AGENTS.len())];
    let mut clock = created_at;
    let mut history = Vec::new();
    let mut record = |operator: (&str, &str), action: &str, content: String, clock: Timestamp| {
        history.push(HistoryEntry {
            id: next(&mut ids.history, "h"),
            operator_id: operator.0.to_owned(),
            operator_name: operator.1.to_owned(),
            action: action.to_owned(),
            content,
            timestamp: clock,
        })
    };
    let provider_operator = (provider.id.as_str(), provider.name.as_str());
    record(provider_operator, "create", format!("{}创建了工单", provider.name), clock);
    let assigned = status != TicketStatus::Open || number.is_multiple_of(2);
    if assigned {
        clock += Duration::minutes(random.between(5, 90));
        record((agent_id, agent_name), "assign", format!("工单已分配给{agent_name}"), clock);
    }
    if status != TicketStatus::Open {
        clock += Duration::minutes(random.between(10, 300));
        record((agent_id, agent_name), "process", format!("正在处理：{title}"), clock);
    }
    let escalated = ticket_type == TicketType::IssueEscalation || number % 7 == 3;
    let escalation_reason = escalated.then(|| "技术复杂度较高，需要专业技术支持".to_owned());
    if escalated {
        clock += Duration::minutes(random.between(10, 120));
        record(provider_operator, "escalate", "工单已升级：技术复杂度较高，需要专业技术支持".to_owned(), clock);
    }
    let escalated_at = escalated.then_some(clock);
    let resolution = (status == TicketStatus::Resolved).then(|| "已远程协助处理，问题已解决".to_owned());
    if resolution.is_some() {
        clock += Duration::minutes(random.between(30, 600));
        record((agent_id, agent_name), "resolve", "已远程协助处理，问题已解决".to_owned(), clock);
    }
    let clock = clock.min(at);
    let ticket = Ticket {
        id: next(&mut ids.ticket, "t"),
        service_provider_id: provider.id.clone(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        title: title.to_owned(),
        content: content.to_owned(),
        ticket_type,
        status,
        escalation_status: if escalated { EscalationStatus::Escalated } else { EscalationStatus::Normal },
        escalation_reason,
        escalated_at,
        assignee_id: assigned.then(|| agent_id.to_owned()),
        assignee_name: assigned.then(|| agent_name.to_owned()),
        resolved_at: resolution.is_some().then_some(clock),
        resolution,
        created_at,
        updated_at: clock,
        history,
        version: 0,
        sla: Default::default(),
    };
    let status_text = match status {
        TicketStatus::Open => "待处理",
        TicketStatus::Processing => "处理中",
        TicketStatus::Resolved => "已解决",
    };
    let notification = Notification {
        id: next(&mut ids.notification, "m"),
        service_provider_id: provider.id.clone(),
        notification_type: NotificationType::TicketUpdate,
        title: "工单状态更新".to_owned(),
        content: format!("客户{}的工单\"{}\"状态已更新为{status_text}", customer.name, title),
        related_customer_id: Some(customer.id.clone()),
        related_customer_name: Some(customer.name.clone()),
        related_ticket_id: Some(ticket.id.clone()),
        read_status: if number.is_multiple_of(3) { ReadStatus::Unread } else { ReadStatus::Read },
        created_at: clock,
        read_at: (!number.is_multiple_of(3)).then_some(clock),
    };
    (ticket, notification)
}

fn demo_alerts(
    provider: &ServiceProvider,
    customers: &[Customer],
    at: Timestamp,
    ids: &mut IdCounters,
) -> Vec<Notification> {
    let mut alerts: Vec<Notification> = customers
        .iter()
        .filter_map(|customer| {
            let (title, content) = match customer.status_at(at) {
                CustomerStatus::Expiring => {
                    ("客户即将到期", format!("客户{}的软件服务将于30天内到期，请及时跟进续费", customer.name))
                }
                CustomerStatus::Expired => {
                    ("客户已到期", format!("客户{}的软件服务已到期，请联系客户办理续费", customer.name))
                }
                CustomerStatus::Active => return None,
            };
            let id = next(&mut ids.notification, "m");
            Some(Notification::customer_alert(id, customer, title, content, at - Duration::hours(2)))
        })
        .collect();
    for (title, content, days) in [
        ("系统维护通知", "系统将于本周六凌晨2:00-4:00进行升级维护，期间暂停服务。", 3),
        ("新功能上线", "进销存系统新增库存预警功能，欢迎向客户推荐使用。", 10),
    ] {
        alerts.push(Notification {
            id: next(&mut ids.notification, "m"),
            service_provider_id: provider.id.clone(),
            notification_type: NotificationType::SystemNotification,
            title: title.to_owned(),
            content: content.to_owned(),
            related_customer_id: None,
            related_customer_name: None,
            related_ticket_id: None,
            read_status: if days > 5 { ReadStatus::Read } else { ReadStatus::Unread },
            created_at: at - Duration::days(days),
            read_at: (days > 5).then(|| at - Duration::days(days - 1)),
        });
    }
    alerts
}

fn demo_chat(
    provider: &ServiceProvider,
    customer: &Customer,
    script: &[&str; 4],
    at: Timestamp,
    random: &mut Lcg,
    ids: &mut IdCounters,
) -> Vec<ChatMessage> {
    let mut clock = at - Duration::hours(random.between(2, 24 * 7));
    script
        .iter()
        .enumerate()
        .map(|(turn, content)| {
            clock += Duration::minutes(random.between(1, 6));
            let sender_type = if turn % 2 == 0 { ChatSender::Customer } else { ChatSender::ServiceProvider };
            ChatMessage {
                id: next(&mut ids.chat, "cm"),
                service_provider_id: provider.id.clone(),
                service_provider_name: provider.name.clone(),
                customer_id: customer.id.clone(),
                customer_name: customer.name.clone(),
                sender_type,
                content: (*content).to_owned(),
                timestamp: clock,
                status: if turn + 1 == script.len() { ChatStatus::Delivered } else { ChatStatus::Read },
            }
        })
        .collect()
}

fn demo_canned_replies(provider: &ServiceProvider, at: Timestamp, ids: &mut IdCounters) -> Vec<CannedReply> {
    CANNED_REPLIES
        .iter()
        .map(|(short_code, title, content)| CannedReply {
            id: next(&mut ids.canned_reply, "cr"),
            service_provider_id: provider.id.clone(),
            short_code: (*short_code).to_owned(),
            title: (*title).to_owned(),
            content: (*content).to_owned(),
            created_at: at - Duration::days(60),
            updated_at: at - Duration::days(60),
            version: 0,
        })
        .collect()
}
