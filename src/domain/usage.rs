//! The usage score: one rule table turns the four usage measures into a total, levels,
//! descriptions and suggestions.
//!
//! | measure | weight | 高 (≥ 90) | 中高 (≥ 75) | 中 (≥ 60) | 低 (< 60) |
//! | --- | --- | --- | --- | --- | --- |
//! | loginFrequency | 20% | 登录频率较高，使用活跃 | 登录较为规律 | 登录频率一般 | 登录频率低，存在流失风险 |
//! | featureUsage | 40% | 核心功能与高级功能均已使用 | 使用了大部分核心功能 | 仅使用了部分核心功能 | 功能使用较少 |
//! | dataInput | 30% | 数据录入及时完整 | 数据输入量较大，系统使用充分 | 数据录入不够完整 | 数据录入很少 |
//! | trainingCompletion | 10% | 培训完成度高，操作规范 | 培训基本完成 | 培训完成一半左右 | 培训完成度低 |
//!
//! The total is the weighted sum, rounded (the spec's example 90/80/85/95 gives 85). The total's
//! level uses its own thresholds, one step lower (高 ≥ 85, 中高 ≥ 70, 中 ≥ 55), because a weighted
//! average rarely reaches the extremes of its parts; with them the spec's example total 85 is 高.

use super::UsageMetrics;

/// A level of the usage score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Low,
    Medium,
    MediumHigh,
    High,
}

impl Level {
    /// The level's Chinese name, as the spec shows it.
    pub fn label(self) -> &'static str {
        match self {
            Level::High => "高",
            Level::MediumHigh => "中高",
            Level::Medium => "中",
            Level::Low => "低",
        }
    }

    fn from_thresholds(score: u8, [high, medium_high, medium]: [u8; 3]) -> Level {
        match score {
            s if s >= high => Level::High,
            s if s >= medium_high => Level::MediumHigh,
            s if s >= medium => Level::Medium,
            _ => Level::Low,
        }
    }
}

const MEASURE_THRESHOLDS: [u8; 3] = [90, 75, 60];
const TOTAL_THRESHOLDS: [u8; 3] = [85, 70, 55];

/// One of the four usage measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    LoginFrequency,
    FeatureUsage,
    DataInput,
    TrainingCompletion,
}

struct MeasureRule {
    weight_percent: u32,
    /// Descriptions for 高, 中高, 中, 低.
    descriptions: [&'static str; 4],
    /// What to suggest when the measure is 中 or 低.
    suggestion: &'static str,
}

impl Measure {
    pub const ALL: [Measure; 4] =
        [Measure::LoginFrequency, Measure::FeatureUsage, Measure::DataInput, Measure::TrainingCompletion];

    fn rule(self) -> MeasureRule {
        match self {
            Measure::LoginFrequency => MeasureRule {
                weight_percent: 20,
                descriptions: ["登录频率较高，使用活跃", "登录较为规律", "登录频率一般", "登录频率低，存在流失风险"],
                suggestion: "建议回访客户，了解登录减少的原因，避免客户流失",
            },
            Measure::FeatureUsage => MeasureRule {
                weight_percent: 40,
                descriptions: [
                    "核心功能与高级功能均已使用",
                    "使用了大部分核心功能",
                    "仅使用了部分核心功能",
                    "功能使用较少",
                ],
                suggestion: "建议演示库存预警、报表分析等核心功能，提高功能使用率",
            },
            Measure::DataInput => MeasureRule {
                weight_percent: 30,
                descriptions: ["数据录入及时完整", "数据输入量较大，系统使用充分", "数据录入不够完整", "数据录入很少"],
                suggestion: "建议协助客户导入商品与库存数据，养成日常录入习惯",
            },
            Measure::TrainingCompletion => MeasureRule {
                weight_percent: 10,
                descriptions: ["培训完成度高，操作规范", "培训基本完成", "培训完成一半左右", "培训完成度低"],
                suggestion: "建议定期进行系统使用培训，提高团队整体使用水平",
            },
        }
    }

    pub fn score(self, metrics: &UsageMetrics) -> u8 {
        match self {
            Measure::LoginFrequency => metrics.login_frequency,
            Measure::FeatureUsage => metrics.feature_usage,
            Measure::DataInput => metrics.data_input,
            Measure::TrainingCompletion => metrics.training_completion,
        }
    }
}

/// The assessment of one measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureAssessment {
    pub score: u8,
    pub level: Level,
    pub description: &'static str,
}

/// The whole usage assessment of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAssessment {
    pub total_score: u8,
    pub level: Level,
    pub login_frequency: MeasureAssessment,
    pub feature_usage: MeasureAssessment,
    pub data_input: MeasureAssessment,
    pub training_completion: MeasureAssessment,
    pub suggestions: Vec<&'static str>,
}

const UPGRADE_SUGGESTION: &str = "可以考虑升级到企业版，获得更多高级功能";
const KEEP_GOING_SUGGESTION: &str = "客户使用情况良好，建议保持定期回访";
const TOP_EDITION: &str = "企业版";

/// The weighted total (0 to 100).
pub fn total_score(metrics: &UsageMetrics) -> u8 {
    let weighted: u32 =
        Measure::ALL.iter().map(|m| u32::from(m.score(metrics).min(100)) * m.rule().weight_percent).sum();
    ((weighted + 50) / 100) as u8
}

pub fn assess_measure(measure: Measure, metrics: &UsageMetrics) -> MeasureAssessment {
    let score = measure.score(metrics);
    let level = Level::from_thresholds(score, MEASURE_THRESHOLDS);
    let descriptions = measure.rule().descriptions;
    let description = match level {
        Level::High => descriptions[0],
        Level::MediumHigh => descriptions[1],
        Level::Medium => descriptions[2],
        Level::Low => descriptions[3],
    };
    MeasureAssessment { score, level, description }
}

/// Assesses a customer's usage. `software_version` decides whether an upgrade is worth suggesting.
pub fn assess(metrics: &UsageMetrics, software_version: &str) -> UsageAssessment {
    let total_score = total_score(metrics);
    let level = Level::from_thresholds(total_score, TOTAL_THRESHOLDS);
    let mut suggestions = Vec::new();
    if level == Level::High && software_version != TOP_EDITION {
        suggestions.push(UPGRADE_SUGGESTION);
    }
    for measure in Measure::ALL {
        let assessment = assess_measure(measure, metrics);
        if assessment.level <= Level::Medium
            || (measure == Measure::TrainingCompletion && assessment.level < Level::High)
        {
            suggestions.push(measure.rule().suggestion);
        }
    }
    if suggestions.is_empty() {
        suggestions.push(KEEP_GOING_SUGGESTION);
    }
    UsageAssessment {
        total_score,
        level,
        login_frequency: assess_measure(Measure::LoginFrequency, metrics),
        feature_usage: assess_measure(Measure::FeatureUsage, metrics),
        data_input: assess_measure(Measure::DataInput, metrics),
        training_completion: assess_measure(Measure::TrainingCompletion, metrics),
        suggestions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(login: u8, feature: u8, data: u8, training: u8) -> UsageMetrics {
        UsageMetrics { login_frequency: login, feature_usage: feature, data_input: data, training_completion: training }
    }

    #[test]
    fn the_specs_example_scores_85_and_reads_as_in_the_spec() {
        let assessment = assess(&metrics(90, 80, 85, 95), "专业版");
        assert_eq!(assessment.total_score, 85);
        assert_eq!(assessment.level.label(), "高");
        assert_eq!(assessment.login_frequency.level.label(), "高");
        assert_eq!(assessment.login_frequency.description, "登录频率较高，使用活跃");
        assert_eq!(assessment.feature_usage.level.label(), "中高");
        assert_eq!(assessment.feature_usage.description, "使用了大部分核心功能");
        assert_eq!(assessment.data_input.level.label(), "中高");
        assert_eq!(assessment.training_completion.description, "培训完成度高，操作规范");
        assert_eq!(assessment.suggestions, vec![UPGRADE_SUGGESTION]);
    }

    #[test]
    fn weak_measures_bring_their_suggestions_and_no_upgrade_pitch() {
        let assessment = assess(&metrics(40, 55, 80, 80), "标准版");
        assert_eq!(assessment.total_score, 62);
        assert_eq!(assessment.level, Level::Medium);
        assert_eq!(assessment.login_frequency.level, Level::Low);
        assert!(!assessment.suggestions.contains(&UPGRADE_SUGGESTION));
        assert!(assessment.suggestions.contains(&Measure::LoginFrequency.rule().suggestion));
        assert!(assessment.suggestions.contains(&Measure::FeatureUsage.rule().suggestion));
        assert!(assessment.suggestions.contains(&Measure::TrainingCompletion.rule().suggestion));
        assert!(!assessment.suggestions.contains(&Measure::DataInput.rule().suggestion));
    }

    #[test]
    fn weights_add_up_to_one_hundred_percent() {
        let sum: u32 = Measure::ALL.iter().map(|m| m.rule().weight_percent).sum();
        assert_eq!(sum, 100);
        assert_eq!(total_score(&metrics(100, 100, 100, 100)), 100);
        assert_eq!(total_score(&metrics(0, 0, 0, 0)), 0);
    }
}
