// The saved example operations: one for every flow of section 5.2 of the API design, and one for
// each operation added since (canned replies), with variables that work against the demo data of
// `demo-a` (customers c001–c030, tickets t001–t036, chats with c001–c008, canned replies
// cr001–cr004). For `demo-b`, use c031–c060, t037–t072 and cr005–cr008.

const CUSTOMER_FIELDS = `id
      name
      contactPerson
      phone
      region
      softwareVersion
      status
      expiryDate
      usageScore
      unresolvedIssues`;

const TICKET_FIELDS = `id
      title
      type
      status
      escalationStatus
      customerId
      customerName
      updatedAt`;

const CANNED_REPLY_FIELDS = `id
    shortCode
    title
    content
    version
    updatedAt`;

export const EXAMPLES = [
  {
    flow: '5.2.1 登录',
    title: '登录 Login',
    query: `# 5.2.1 登录：用户名和密码换取访问令牌。
# 在这里运行成功后，页面也会用返回的令牌登录（与上方登录栏效果相同）。
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    token
    refreshToken
    expiresAt
    userInfo {
      id
      username
      name
      region
    }
  }
}
`,
    variables: { username: 'demo-a', password: 'demo12345' },
  },
  {
    flow: '5.2.2 客户管理',
    title: '客户列表 Customers',
    query: `# 5.2.2 客户管理：客户列表（可按状态 ACTIVE / EXPIRING / EXPIRED 和关键词筛选）。
query Customers($page: Int!, $pageSize: Int!, $status: CustomerStatus, $keyword: String) {
  customers(page: $page, pageSize: $pageSize, status: $status, keyword: $keyword) {
    total
    page
    pageSize
    items {
      ${CUSTOMER_FIELDS}
    }
  }
}
`,
    variables: { page: 1, pageSize: 10 },
  },
  {
    flow: '5.2.2 客户管理',
    title: '客户详情 Customer',
    query: `# 5.2.2 客户管理：客户详情、使用深度评分和该客户的工单。
query Customer($id: ID!) {
  customer(id: $id) {
    ${CUSTOMER_FIELDS}
    email
    portCount
    purchaseDate
    lastActiveTime
    usageScoreDetails {
      loginFrequency
      featureUsage
      dataInput
      trainingCompletion
    }
  }
  usageScore(customerId: $id) {
    totalScore
    scoreLevel
    scoreDetails {
      loginFrequency { score level description }
      featureUsage { score level description }
      dataInput { score level description }
      trainingCompletion { score level description }
    }
    suggestions
  }
  tickets(customerId: $id, pageSize: 5) {
    total
    items {
      ${TICKET_FIELDS}
    }
  }
}
`,
    variables: { id: 'c001' },
  },
  {
    flow: '5.2.3 工单处理',
    title: '工单列表 Tickets',
    query: `# 5.2.3 工单处理：工单列表（可按状态、类型、客户筛选）。
query Tickets($page: Int!, $pageSize: Int!, $status: TicketStatus, $type: TicketType) {
  tickets(page: $page, pageSize: $pageSize, status: $status, type: $type) {
    total
    items {
      ${TICKET_FIELDS}
    }
  }
}
`,
    variables: { page: 1, pageSize: 10, status: 'OPEN' },
  },
  {
    flow: '5.2.3 工单处理',
    title: '工单详情 Ticket',
    query: `# 5.2.3 工单处理：工单详情和处理记录。
query Ticket($id: ID!) {
  ticket(id: $id) {
    ${TICKET_FIELDS}
    content
    assigneeName
    lastProcessor
    escalationReason
    resolution
    resolvedAt
    createdAt
    processingHistory {
      id
      action
      operatorName
      content
      timestamp
    }
  }
}
`,
    variables: { id: 't001' },
  },
  {
    flow: '5.2.3 工单处理',
    title: '创建工单 Create ticket',
    query: `# 5.2.3 工单处理：为客户创建工单（状态 OPEN）。
# 传入 idempotencyKey 时，用同一个键重试只会返回第一次创建的工单。
mutation CreateTicket($customerId: ID!, $title: String!, $content: String!, $type: TicketType!, $idempotencyKey: String) {
  createTicket(customerId: $customerId, title: $title, content: $content, type: $type, idempotencyKey: $idempotencyKey) {
    ${TICKET_FIELDS}
    content
    processingHistory { action operatorName content timestamp }
  }
}
`,
    variables: {
      customerId: 'c001',
      title: '打印机无法连接',
      content: '出库单打印时提示找不到打印机，重启后仍然无法打印。',
      type: 'SYSTEM_ISSUE',
    },
  },
  {
    flow: '5.2.3 工单处理',
    title: '回复工单 Reply',
    query: `# 5.2.3 工单处理：回复工单（状态变为 PROCESSING；回复已解决的工单会重新打开它）。
mutation ReplyTicket($id: ID!, $content: String!) {
  replyTicket(id: $id, content: $content) {
    ticketId
    replyId
    content
    operatorName
    timestamp
    ticket { id status updatedAt }
  }
}
`,
    variables: { id: 't002', content: '您好，我们已经定位到问题，今天下午会远程协助处理。' },
  },
  {
    flow: '5.2.3 工单处理',
    title: '解决工单 Resolve',
    query: `# 5.2.3 工单处理：标记工单为已解决。
# 已解决的工单再次标记会得到 CONFLICT：换一个未解决的工单（例如 t008、t011）再试。
mutation ResolveTicket($id: ID!, $resolution: String) {
  resolveTicket(id: $id, resolution: $resolution) {
    id
    status
    resolution
    resolvedAt
    processingHistory { action operatorName content timestamp }
  }
}
`,
    variables: { id: 't005', resolution: '已远程协助处理，问题已解决。' },
  },
  {
    flow: '5.2.4 消息推送',
    title: '消息列表 Notifications',
    query: `# 5.2.4 消息推送：消息列表和未读数（可按类型、已读状态筛选）。
query Notifications($page: Int!, $pageSize: Int!, $readStatus: ReadStatus) {
  notifications(page: $page, pageSize: $pageSize, readStatus: $readStatus) {
    total
    unreadCount
    items {
      id
      type
      title
      content
      relatedCustomerId
      relatedTicketId
      readStatus
      createdAt
    }
  }
}
`,
    variables: { page: 1, pageSize: 10, readStatus: 'UNREAD' },
  },
  {
    flow: '5.2.4 消息推送',
    title: '标记已读 Mark read',
    query: `# 5.2.4 消息推送：标记一条消息为已读（再次标记保留第一次的已读时间）。
mutation MarkNotificationRead($id: ID!) {
  markNotificationRead(id: $id) {
    id
    title
    readStatus
    readAt
  }
}
`,
    variables: { id: 'm001' },
  },
  {
    flow: '5.2.4 消息推送',
    title: '全部已读 Mark all read',
    query: `# 5.2.4 消息推送：标记所有消息为已读，返回标记了多少条。
mutation MarkAllNotificationsRead {
  markAllNotificationsRead {
    success
    markedCount
    updatedAt
  }
}
`,
    variables: null,
  },
  {
    flow: '5.2.4 消息推送',
    title: '实时消息 Live notifications',
    query: `# 5.2.4 消息推送：实时接收新消息和未读数（例如在另一个窗口回复或升级工单）。
subscription LiveNotifications($after: String) {
  notifications(after: $after) {
    cursor
    unreadCount
    notification {
      id
      type
      title
      content
      relatedTicketId
      createdAt
    }
  }
}
`,
    variables: null,
  },
  {
    flow: '5.2.5 问题升级',
    title: '升级工单 Escalate',
    query: `# 5.2.5 问题升级：把工单升级到更高一级的技术支持（并通知客服系统）。
# 已升级或已解决的工单会得到 CONFLICT：换一个工单（例如 t013、t014）再试。
mutation EscalateTicket($id: ID!, $reason: String!) {
  escalateTicket(id: $id, reason: $reason) {
    ticketId
    escalationStatus
    reason
    escalatedAt
    notificationSent
    ticket { id status escalationStatus }
  }
}
`,
    variables: { id: 't007', reason: '客户多次反馈无法解决，需要技术专家介入。' },
  },
  {
    flow: '5.2.6 智能客服',
    title: '聊天记录 Chat history',
    query: `# 5.2.6 智能客服：与客户的聊天记录（第 1 页是最新的消息，每页按时间先后排列）。
query ChatHistory($customerId: ID!, $page: Int!, $pageSize: Int!) {
  chatMessages(customerId: $customerId, page: $page, pageSize: $pageSize) {
    total
    items {
      id
      senderType
      content
      timestamp
      status
    }
  }
}
`,
    variables: { customerId: 'c001', page: 1, pageSize: 20 },
  },
  {
    flow: '5.2.6 智能客服',
    title: '发送聊天 Send chat',
    query: `# 5.2.6 智能客服：回复客户的咨询。在另一个窗口（页面顶部“新窗口”）运行“实时聊天”，可以看到它实时送达。
mutation SendChatMessage($customerId: ID!, $content: String!, $idempotencyKey: String) {
  sendChatMessage(customerId: $customerId, content: $content, idempotencyKey: $idempotencyKey) {
    id
    customerId
    senderType
    content
    timestamp
    status
  }
}
`,
    variables: { customerId: 'c001', content: '您好，问题已经处理好了，请再试一下。' },
  },
  {
    flow: '5.2.6 智能客服',
    title: '聊天升级 Escalate chat',
    query: `# 5.2.6 智能客服：无法在聊天中解决时，把聊天升级为工单（类型 ISSUE_ESCALATION，已升级）。
mutation EscalateChat($customerId: ID!, $content: String!, $reason: String!) {
  escalateChat(customerId: $customerId, content: $content, reason: $reason) {
    id
    title
    type
    status
    escalationStatus
    escalationReason
    content
  }
}
`,
    variables: {
      customerId: 'c001',
      content: '客户反馈登录时提示密码错误，重置密码后仍无法登录。',
      reason: '需要技术支持排查账号问题',
    },
  },
  {
    flow: '5.2.6 智能客服',
    title: '实时聊天 Live chat',
    query: `# 5.2.6 智能客服：实时接收与客户的聊天消息（WebSocket /graphql/ws）。
# 运行后，在另一个窗口（页面顶部“新窗口”）运行“发送聊天”，消息会出现在右侧结果中。
# GraphiQL 同一时间只运行一个操作：在本窗口切换标签页会停止订阅。
# 断线重连时把最后看到的 cursor 作为 after 传入，会先补发错过的消息（"0" 从头重放）。
subscription LiveChat($customerId: ID, $after: String) {
  chatMessages(customerId: $customerId, after: $after) {
    cursor
    message {
      id
      customerId
      customerName
      senderType
      content
      timestamp
      status
    }
  }
}
`,
    variables: { customerId: 'c001' },
  },
  {
    flow: '快捷短语',
    title: '快捷短语列表 Canned replies',
    query: `# 快捷短语：服务商保存的常用回复，按编码排序（每个服务商最多 200 条）。
# 内容里的 {customerName}、{contactPerson}、{providerName} 在发送时由服务端填入。
query CannedReplies($page: Int!, $pageSize: Int!) {
  cannedReplies(page: $page, pageSize: $pageSize) {
    total
    items {
      ${CANNED_REPLY_FIELDS}
    }
  }
}
`,
    variables: { page: 1, pageSize: 20 },
  },
  {
    flow: '快捷短语',
    title: '快捷短语详情 Canned reply',
    query: `# 快捷短语：一条快捷短语（修改时需要它的 version）。
query CannedReply($id: ID!) {
  cannedReply(id: $id) {
    ${CANNED_REPLY_FIELDS}
  }
}
`,
    variables: { id: 'cr001' },
  },
  {
    flow: '快捷短语',
    title: '新建快捷短语 Create canned reply',
    query: `# 快捷短语：新建。编码为 1 到 32 个字母、数字、下划线或连字符，同一服务商内不可重复；内容最多 2000 字。
mutation CreateCannedReply($shortCode: String!, $title: String!, $content: String!, $idempotencyKey: String) {
  createCannedReply(shortCode: $shortCode, title: $title, content: $content, idempotencyKey: $idempotencyKey) {
    ${CANNED_REPLY_FIELDS}
  }
}
`,
    variables: {
      shortCode: 'followup',
      title: '回访',
      content: '{contactPerson}您好，我是{providerName}的客服，上次的问题现在是否已经解决？',
    },
  },
  {
    flow: '快捷短语',
    title: '修改快捷短语 Update canned reply',
    query: `# 快捷短语：修改。version 必须是当前版本号，期间被别人改过会返回 CONFLICT；未提供的字段保持不变。
mutation UpdateCannedReply($id: ID!, $version: Int!, $title: String, $content: String) {
  updateCannedReply(id: $id, version: $version, title: $title, content: $content) {
    ${CANNED_REPLY_FIELDS}
  }
}
`,
    variables: { id: 'cr003', version: 0, title: '感谢等待' },
  },
  {
    flow: '快捷短语',
    title: '删除快捷短语 Delete canned reply',
    query: `# 快捷短语：删除。
mutation DeleteCannedReply($id: ID!) {
  deleteCannedReply(id: $id) {
    success
    id
  }
}
`,
    variables: { id: 'cr004' },
  },
  {
    flow: '快捷短语',
    title: '用快捷短语发送聊天 Send canned reply',
    query: `# 快捷短语：用 cannedReplyId 代替 content 发送聊天消息，服务端填入客户名称、联系人和服务商名称。
mutation SendCannedReply($customerId: ID!, $cannedReplyId: ID!, $idempotencyKey: String) {
  sendChatMessage(customerId: $customerId, cannedReplyId: $cannedReplyId, idempotencyKey: $idempotencyKey) {
    id
    customerName
    content
    timestamp
  }
}
`,
    variables: { customerId: 'c001', cannedReplyId: 'cr001' },
  },
  {
    flow: '快捷短语',
    title: '用快捷短语回复工单 Reply with canned reply',
    query: `# 快捷短语：用 cannedReplyId 代替 content 回复工单，占位符按工单的客户填入。
mutation ReplyWithCannedReply($id: ID!, $cannedReplyId: ID!, $idempotencyKey: String) {
  replyTicket(id: $id, cannedReplyId: $cannedReplyId, idempotencyKey: $idempotencyKey) {
    ticketId
    replyId
    content
    timestamp
  }
}
`,
    variables: { id: 't001', cannedReplyId: 'cr003' },
  },
  {
    flow: '收件箱 Inbox',
    title: '会话列表 Conversations',
    query: `# 收件箱：每位有聊天消息的客户一条会话，含未读数和等待回复的起始时间。
# filter：ALL / UNREAD 按最后消息时间倒序；WAITING 按等待时长，等得最久的在前。
# 下一页：把本页最后一条的 cursor 作为 after 传入（此时 page 只能为1）。
query Conversations($filter: ConversationFilter!, $after: String) {
  conversations(filter: $filter, pageSize: 20, after: $after) {
    total
    hasMore
    items {
      customerId
      customer {
        name
        phone
        status
      }
      lastMessage {
        senderType
        preview
        timestamp
      }
      unreadCount
      markedUnread
      waitingSince
      cursor
    }
  }
}
`,
    variables: { filter: 'WAITING' },
  },
  {
    flow: '收件箱 Inbox',
    title: '标记会话已读 Mark conversation read',
    query: `# 把与客户的会话标记为已读：客户发来的每条消息变为 READ（订阅 chatMessageStatus 会收到），
# 并清除“标记为未读”。
mutation MarkConversationRead($customerId: ID!) {
  markConversationRead(customerId: $customerId) {
    customerId
    unreadCount
    markedUnread
    waitingSince
  }
}
`,
    variables: { customerId: 'c001' },
  },
  {
    flow: '收件箱 Inbox',
    title: '标记会话未读 Mark conversation unread',
    query: `# 把会话标记为未读（未读数至少为1），直到再次标记为已读。
mutation MarkConversationUnread($customerId: ID!) {
  markConversationUnread(customerId: $customerId) {
    customerId
    unreadCount
    markedUnread
  }
}
`,
    variables: { customerId: 'c001' },
  },
  {
    flow: '收件箱 Inbox',
    title: '角标 Badges',
    query: `# 小程序标签页的角标：未读通知、未读聊天消息、等待回复的会话。
query Badges {
  badges {
    unreadNotifications
    unreadChatMessages
    waitingConversations
  }
}
`,
  },
  {
    flow: '收件箱 Inbox',
    title: '角标实时 Live badges',
    query: `# 角标变化时推送（WebSocket /graphql/ws）。先用“角标”查询取得当前数字，再订阅变化。
# 断线重连时把最后看到的 cursor 作为 after 传入：错过的变化合并为一次推送（当前的数字）。
subscription LiveBadges($after: String) {
  badges(after: $after) {
    cursor
    badges {
      unreadNotifications
      unreadChatMessages
      waitingConversations
    }
  }
}
`,
  },
  {
    flow: '输入状态提示',
    title: '正在输入 Typing',
    query: `# 输入状态提示：服务商正在输入时调用（可以每次按键都调用）。
# 同一客户每秒最多转发一次：返回 true 表示已接收并转发（配置了 PC 客服系统时以 chat.typing 事件发出，
# 10 秒内未送达即丢弃），返回 false 表示距上次不足一秒、未转发——不是错误，无需重试。不保存任何数据。
mutation Typing($customerId: ID!) {
  typing(customerId: $customerId)
}
`,
    variables: { customerId: 'c001' },
  },
  {
    flow: '输入状态提示',
    title: '客户正在输入 Customer typing',
    query: `# 输入状态提示：实时接收客户“正在输入”（PC 客服系统通过签名的 POST /integrations/cs/typing 发来）。
# 只推送订阅期间到达的信号：输入状态不保存，没有 cursor，也不能用 after 补发。每位客户每秒最多一次。
subscription CustomerTyping($customerId: ID) {
  typing(customerId: $customerId) {
    customerId
    at
  }
}
`,
    variables: { customerId: 'c001' },
  },
];

export function variablesText(example) {
  return example.variables ? JSON.stringify(example.variables, null, 2) : '';
}
