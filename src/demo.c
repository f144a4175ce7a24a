/* demo.c — generates a realistic synthetic bank tenant.
 *
 * Schema: the bank template plus 40 attributes a retail bank keeps on its
 * customers — product holdings, channels, balances in fen, scores and
 * counts, review dates, occupation, education, life stage, tier — defined
 * as POST /v1/attributes defines them.  Most are enums and bools: a numeric
 * attribute costs the segment index a column entry (up to 8 bytes) for
 * every customer, a categorical one only bitmap space for those who have
 * it.
 *
 * Customers: ages 18-80 peaking in the 30s-40s, a weighted list of cities
 * with branches in each, log-normal AUM (median about 50,000 yuan), risk
 * levels R1-R5 weighted to the middle with assessments that sometimes
 * expired, payroll and credit-card holders, registration over three years,
 * a customer manager for the wealthier ones, channel identities and
 * personal data (sealed like any other).  The other attributes are drawn to
 * agree with these where that is cheap: the tier follows the AUM, fund and
 * deposit balances split it, fund_balance > 0 exactly for fund holders,
 * products_held counts the holdings, occupation and life stage follow age
 * and marriage, mobile_banking and wechat_bound are the app and WeChat
 * identities.  Not every customer has every attribute.
 *
 * Tags: a catalogue of 50 (标签体系), inserted as POST /v1/tags inserts
 * them: 40 rules over the attributes and behaviour, and 10 manual lists
 * whose members — a few percent of the customers each, leaning to the
 * customers such a list holds in a bank — go to tag_members.
 *
 * Points: two point types, 积分 (points, until the end of next year) and
 * 阳光值 (sunshine, 30 days); no one holds any yet (docs/rewards.md earns
 * and spends some with curl).
 *
 * Benefits: three suppliers, items of every kind (a 立减金 coupon, a
 * voucher with a pool of 200 codes, goods, two financial rights, one for a
 * segment), a private-banking package and three points-mall listings; no
 * grants yet.
 *
 * Behaviour: each mobile-banking customer has an activity level; on each
 * day an active customer opens the app, may check in, view wealth products
 * (with dwell times), click through, and — fund holders — sometimes buy: a
 * view -> click -> buy funnel; and pay bills.  Everything derives from one
 * seeded generator, so the same seed gives the same bank. */
#include "demo.h"
#include "attr.h"
#include "benefits.h"
#include "customer.h"
#include "ledger.h"
#include "segment_parse.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define BATCH 20000 /* rows per transaction */

/* xoshiro256** seeded by splitmix64 */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static double uniform(rng *r)
{
    return (double)(next(r) >> 11) * 0x1.0p-53;
}

static int64_t below(rng *r, int64_t n)
{
    return (int64_t)(uniform(r) * (double)n);
}

static bool chance(rng *r, double p)
{
    return uniform(r) < p;
}

static double normal(rng *r)
{
    double u = uniform(r), v = uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static int weighted(rng *r, const double *w, int n)
{
    double x = uniform(r), acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += w[i]) >= x)
            return i;
    return n - 1;
}

#define WEIGHTED(r, w) weighted((r), (w), (int)SY_ARRAY_LEN(w))

static const char *const k_cities[] = {"上海", "杭州", "南京", "苏州", "北京", "深圳",
                                       "广州", "成都", "武汉", "宁波", "无锡", "合肥"};
static const double k_city_w[] = {0.18, 0.12, 0.10, 0.09, 0.09, 0.08,
                                  0.08, 0.07, 0.06, 0.05, 0.04, 0.04};
/* the province of each city above, and where those born elsewhere come from */
static const char *const k_city_province[] = {"上海", "浙江", "江苏", "江苏", "北京", "广东",
                                              "广东", "四川", "湖北", "浙江", "江苏", "安徽"};
static const char *const k_provinces[] = {"河南", "安徽", "四川", "湖南", "山东", "江西",
                                          "湖北", "江苏", "浙江", "河北", "广西", "重庆"};
static const double k_province_w[] = {0.14, 0.12, 0.10, 0.10, 0.09, 0.08,
                                      0.08, 0.07, 0.06, 0.06, 0.05, 0.05};
static const double k_risk_w[] = {0.15, 0.30, 0.30, 0.18, 0.07};
static const char *const k_surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵",
                                         "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
static const char *const k_given[] = {"伟", "芳",   "娜", "敏", "静",   "丽",   "强",   "磊",
                                      "军", "洋",   "勇", "艳", "杰",   "娟",   "涛",   "明",
                                      "超", "秀英", "华", "慧", "建国", "晓东", "子涵", "一鸣"};

/* Enum values in their order (which comparisons such as
 * customer_tier >= '白金' use), with the indexes the generator needs. */
static const char *const k_occupation[] = {"企业职员",   "公职人员", "专业人士",
                                           "个体工商户", "私营业主", "自由职业",
                                           "学生",       "退休",     "其他"};
enum {
    OCC_EMPLOYEE,
    OCC_CIVIL,
    OCC_PROFESSIONAL,
    OCC_SELF_EMPLOYED,
    OCC_OWNER,
    OCC_FREELANCE,
    OCC_STUDENT,
    OCC_RETIRED,
    OCC_OTHER
};
/* of working-age customers; students and the retired are drawn by age */
static const double k_occupation_w[] = {0.42, 0.10, 0.10, 0.09, 0.05, 0.12, 0, 0, 0.12};
static const char *const k_education[] = {"高中及以下", "大专", "本科", "硕士", "博士"};
static const double k_education_w[] = {0.30, 0.27, 0.33, 0.08, 0.02};
enum { EDU_BACHELOR = 2 };
static const char *const k_marital[] = {"未婚", "已婚", "离异", "丧偶"};
static const double k_marital_w[4][4] = {
    {0.90, 0.10, 0, 0}, {0.40, 0.57, 0.03, 0}, {0.08, 0.82, 0.08, 0.02}, {0.02, 0.78, 0.05, 0.15}};
static const char *const k_life_stage[] = {"学生", "单身青年", "新婚", "育儿", "中年", "退休"};
enum { STAGE_STUDENT, STAGE_SINGLE, STAGE_NEWLYWED, STAGE_PARENT, STAGE_MIDLIFE, STAGE_RETIRED };
static const char *const k_tier[] = {"普通", "金卡", "白金", "钻石", "私行"};
/* AUM in fen from which each tier above 普通 starts: 50,000, 500,000,
 * 2 million and 6 million yuan */
static const int64_t k_tier_from[] = {5000000, 50000000, 200000000, 600000000};
static const char *const k_channel[] = {"手机银行", "微信银行", "网点", "电话银行"};
enum { CH_APP, CH_WECHAT, CH_BRANCH, CH_PHONE };
static const char *const k_experience[] = {"无", "1年以内", "1-3年", "3-5年", "5年以上"};
static const double k_experience_investor_w[] = {0.05, 0.15, 0.35, 0.25, 0.20};
static const double k_experience_other_w[] = {0.55, 0.15, 0.15, 0.10, 0.05};
static const char *const k_kyc[] = {"正常", "待更新", "已过期"};
static const char *const k_trend[] = {"上升", "持平", "下降"};
static const double k_trend_w[] = {0.28, 0.47, 0.25};
static const char *const k_acquisition[] = {"网点开户",   "手机银行", "代发批量",
                                            "信用卡交叉", "员工推荐", "异业合作"};
enum { ACQ_PAYROLL = 2, ACQ_REFERRAL = 4 };
static const double k_acquisition_w[] = {0.38, 0.30, 0.02, 0.12, 0.08, 0.10};

#define VALUES(a) a, (int)SY_ARRAY_LEN(a)

/* The demo bank's attributes beyond the template.  Money is an integer in
 * fen with unit "fen", as the template's aum. */
static const struct demo_attr {
    const char *name, *type;
    const char *const *values; /* enum values, in order */
    int nvalues;
    const char *unit, *description;
} k_attrs[] = {
    {"has_time_deposit", "bool", NULL, 0, NULL, "Holds a time deposit (定期存款)"},
    {"has_fund", "bool", NULL, 0, NULL, "Holds mutual funds bought through the bank (基金)"},
    {"has_wealth", "bool", NULL, 0, NULL, "Holds wealth-management products (理财)"},
    {"has_insurance", "bool", NULL, 0, NULL, "Holds insurance sold by the bank (代销保险)"},
    {"has_loan", "bool", NULL, 0, NULL, "Has a consumer or business loan (消费贷/经营贷)"},
    {"has_mortgage", "bool", NULL, 0, NULL, "Has a mortgage (房贷)"},
    {"has_gold", "bool", NULL, 0, NULL, "Holds precious metals (贵金属)"},
    {"pension_account", "bool", NULL, 0, NULL, "Has a personal pension account (个人养老金)"},
    {"mobile_banking", "bool", NULL, 0, NULL, "Uses mobile banking (手机银行)"},
    {"wechat_bound", "bool", NULL, 0, NULL, "Has bound the bank's WeChat account (微信银行)"},
    {"e_cny_wallet", "bool", NULL, 0, NULL, "Has an e-CNY wallet with the bank (数字人民币)"},
    {"utility_autopay", "bool", NULL, 0, NULL, "Pays utility bills by direct debit (生活缴费代扣)"},
    {"marketing_consent", "bool", NULL, 0, NULL, "Agreed to receive marketing (营销授权)"},
    {"is_employee", "bool", NULL, 0, NULL, "Employee of the bank (本行员工)"},
    {"has_car", "bool", NULL, 0, NULL, "Car owner (车主)"},
    {"complaint_12m", "bool", NULL, 0, NULL, "Complained in the last 12 months (投诉)"},
    {"occupation", "enum", VALUES(k_occupation), NULL, "Occupation (职业)"},
    {"education", "enum", VALUES(k_education), NULL, "Highest education (学历), lowest first"},
    {"marital_status", "enum", VALUES(k_marital), NULL, "Marital status (婚姻状况)"},
    {"life_stage", "enum", VALUES(k_life_stage), NULL, "Life stage (人生阶段), a model's estimate"},
    {"customer_tier", "enum", VALUES(k_tier), NULL,
     "Tier by AUM (客户等级): 金卡 from 50,000 yuan, 白金 500,000, 钻石 2 million, 私行 6 million"},
    {"channel_preference", "enum", VALUES(k_channel), NULL, "Preferred channel (渠道偏好)"},
    {"investment_experience", "enum", VALUES(k_experience), NULL,
     "Investment experience declared in the suitability assessment (投资经验)"},
    {"kyc_status", "enum", VALUES(k_kyc), NULL,
     "Due diligence (KYC) status: 待更新 two years after the review, 已过期 after three"},
    {"asset_trend", "enum", VALUES(k_trend), NULL, "AUM trend over three months (资产趋势)"},
    {"acquisition_channel", "enum", VALUES(k_acquisition), NULL,
     "How the customer came (获客渠道)"},
    {"native_province", "string", NULL, 0, NULL, "Province of origin (籍贯)"},
    {"payroll_employer", "string", NULL, 0, NULL,
     "Employer paying salary through the bank (代发单位)"},
    {"referrer_id", "string", NULL, 0, NULL, "Employee who referred the customer (推荐人工号)"},
    {"deposit_balance", "integer", NULL, 0, "fen", "Deposits, current and time, in fen (存款余额)"},
    {"fund_balance", "integer", NULL, 0, "fen",
     "Funds held, in fen (基金持仓); 0 for a fund account without holdings"},
    {"loan_balance", "integer", NULL, 0, "fen", "Loans outstanding, in fen (贷款余额)"},
    {"monthly_income", "integer", NULL, 0, "fen",
     "Monthly income in fen: salary paid through the bank, or as declared (月收入)"},
    {"credit_score", "integer", NULL, 0, NULL, "Internal credit score, 350-950 (行内评分)"},
    {"products_held", "integer", NULL, 0, NULL,
     "Products held, the current account included (持有产品数)"},
    {"txn_count_30d", "integer", NULL, 0, NULL, "Card and account transactions in 30 days"},
    {"branch_visits_12m", "integer", NULL, 0, NULL, "Branch visits in 12 months (网点到访)"},
    {"last_txn_at", "date", NULL, 0, NULL, "Date of the latest transaction (最近交易日)"},
    {"card_opened_at", "date", NULL, 0, NULL, "Date the debit card was opened (开卡日期)"},
    {"kyc_reviewed_at", "date", NULL, 0, NULL, "Date of the latest KYC review (尽职调查)"},
};

/* Whom a manual list leans to. */
typedef enum {
    LEAN_NONE,
    LEAN_MANAGED,   /* has a customer manager */
    LEAN_WEALTHY,   /* AUM of 1 million yuan or more */
    LEAN_MID_AGE,   /* 35 to 55 */
    LEAN_COMPLAINT, /* complained in the last 12 months */
    LEAN_CARD,      /* credit-card holders */
    LEAN_APP,       /* mobile-banking users */
    LEAN_INVESTOR,  /* holds funds or wealth products */
} demo_lean;

/* The tag catalogue.  A rule tag has an expression (checked by the
 * end-to-end test to evaluate over the demo's schema); a manual tag holds
 * a share p of the customers, or p_in of those its lean picks. */
/* clang-format off */
#define RULE(name, category, expression, description) \
    {name, category, expression, description, 0, 0, LEAN_NONE}
#define LIST(name, category, description, p, p_in, lean) \
    {name, category, NULL, description, p, p_in, lean}
/* clang-format on */

static const struct demo_tag {
    const char *name, *category, *expression, *description;
    double p, p_in;
    demo_lean lean;
} k_tags[] = {
    /* value (价值) */
    RULE("财富客户", "value", "aum >= 50000000", "AUM of 500,000 yuan or more"),
    RULE("高净值", "value", "customer_tier >= '钻石'", "Tier 钻石 or 私行: 2 million yuan or more"),
    RULE("私行客户", "value", "customer_tier = '私行'", "Private banking: 6 million yuan or more"),
    RULE("资产提升潜力", "value",
         "customer_tier = '普通' and aum >= 3000000 and monthly_income >= 1500000",
         "Close to 金卡, with the income to get there"),
    RULE("资产流失预警", "value", "asset_trend = '下降' and aum >= 20000000",
         "AUM of 200,000 yuan or more, falling"),
    RULE("大额存款", "value", "deposit_balance >= 100000000", "Deposits of 1 million yuan or more"),
    RULE("信贷客户", "value", "has_loan = true or has_mortgage = true", "Has a loan or a mortgage"),
    RULE("信用优良", "value", "credit_score >= 750", "Internal credit score of 750 or more"),
    RULE("多产品持有", "value", "products_held >= 5", "Holds five products or more"),
    RULE("代发财富", "value", "tag('代发工资') and tag('财富客户') and not tag('员工')",
         "Payroll customers with 500,000 yuan or more, staff excluded"),
    /* basic (基础) */
    RULE("代发工资", "basic", "payroll = true", "Salary paid through the bank (代发客群)"),
    RULE("新客", "basic", "registered_at within 90d", "Registered in the last 90 days"),
    RULE("员工", "basic", "is_employee = true", "Employees of the bank"),
    RULE("银发客群", "basic", "birth_year <= 1965", "Born 1965 or earlier"),
    RULE("Z世代", "basic", "birth_year >= 1995", "Born 1995 or later"),
    RULE("公职人员", "basic", "occupation = '公职人员'", "Civil servants and public institutions"),
    RULE("小微企业主", "basic", "occupation in ('个体工商户', '私营业主')",
         "Self-employed and owners of small businesses"),
    RULE("重点代发单位", "basic",
         "payroll_employer in ('E00001', 'E00002', 'E00003', 'E00004', 'E00005')",
         "Employees of the five largest payroll employers"),
    RULE("KYC待更新", "basic", "kyc_status != '正常'", "Due diligence review due or expired"),
    RULE("风险测评过期", "basic", "risk_assessed_at is null or not risk_assessed_at within 365d",
         "No risk assessment in the last year: re-assess before selling wealth products"),
    RULE("拒绝营销", "basic", "marketing_consent = false", "Did not agree to marketing"),
    RULE("营销可触达", "basic",
         "marketing_consent = true and not tag('活动黑名单') and not tag('员工')",
         "May be sent campaigns: agreed to marketing, not blacklisted, not staff"),
    /* behaviour (行为) */
    RULE("沉睡客户", "behaviour", "not did(login, 30d) and not last_txn_at within 90d",
         "No login in 30 days and no transaction in 90"),
    RULE("手机银行活跃", "behaviour", "did(login, 30d) >= 10",
         "Logged in 10 times or more in 30 days"),
    RULE("签到达人", "behaviour", "did(sign_in, 7d) >= 4", "Checked in 4 days or more this week"),
    RULE("理财浏览未购买", "behaviour", "did(view_wealth, 7d) >= 2 and not did(buy_fund, 30d)",
         "Looked at wealth products twice this week, bought no fund in 30 days"),
    RULE("近30天购基", "behaviour", "did(buy_fund, 30d)", "Bought a fund in the last 30 days"),
    RULE("深度浏览理财", "behaviour", "dwell(view_wealth, 7d) >= 5m",
         "Five minutes or more on wealth products this week"),
    RULE("手机银行流失风险", "behaviour",
         "mobile_banking = true and not did(login, 14d) and aum >= 5000000",
         "Mobile banking users with 50,000 yuan or more, silent for two weeks"),
    RULE("生活缴费", "behaviour", "did(pay_bill, 30d) or utility_autopay = true",
         "Pays bills through the bank"),
    RULE("高频交易", "behaviour", "txn_count_30d >= 30", "30 transactions or more in 30 days"),
    RULE("网点常客", "behaviour", "branch_visits_12m >= 6", "Six branch visits or more in a year"),
    RULE("近一年有投诉", "behaviour", "complaint_12m = true", "Complained in the last 12 months"),
    /* preference (偏好) */
    RULE("理财偏好", "preference",
         "has_wealth = true or has_fund = true or did(view_wealth, 30d) >= 3",
         "Holds or keeps looking at wealth products"),
    RULE("稳健型", "preference", "risk_level <= R2 and has_time_deposit = true",
         "Low risk tolerance, holds time deposits"),
    RULE("进取型投资者", "preference", "risk_level >= R4 and investment_experience >= '3-5年'",
         "High risk tolerance and three years of investing or more"),
    RULE("线上渠道偏好", "preference", "channel_preference in ('手机银行', '微信银行')",
         "Prefers mobile or WeChat banking"),
    RULE("数字人民币用户", "preference", "e_cny_wallet = true", "Has an e-CNY wallet"),
    RULE("保险需求", "preference", "life_stage in ('新婚', '育儿') and has_insurance = false",
         "Newly married or raising children, no insurance yet"),
    RULE(
        "养老金开户潜客", "preference",
        "pension_account = false and birth_year between 1966 and 1990 and monthly_income >= 800000",
        "Could open a personal pension account: working age, 8,000 yuan a month or more"),
    /* manual lists */
    LIST("活动黑名单", "basic", "Excluded from campaigns and rewards (e.g. reward abuse)", 0.015, 0,
         LEAN_NONE),
    LIST("网点白名单", "basic", "Vouched for by a branch: exempt from frequency limits", 0.03, 0,
         LEAN_NONE),
    LIST("反诈重点关注", "basic", "Under watch by anti-fraud (反诈)", 0.008, 0, LEAN_NONE),
    LIST("专属客户经理名单", "value", "Served by a dedicated customer manager", 0.01, 0.6,
         LEAN_MANAGED),
    LIST("高端客户邀约名单", "value", "Invited to the private-banking events", 0.003, 0.3,
         LEAN_WEALTHY),
    LIST("投诉回访名单", "behaviour", "To be called back after a complaint", 0.001, 0.8,
         LEAN_COMPLAINT),
    LIST("种子用户", "behaviour", "Try new app features first", 0, 0.025, LEAN_APP),
    LIST("养老金营销名单", "preference", "Personal pension campaign list", 0.01, 0.06,
         LEAN_MID_AGE),
    LIST("信用卡分期意向", "preference", "Asked about paying by instalments", 0, 0.07, LEAN_CARD),
    LIST("理财沙龙报名", "preference", "Signed up for a wealth seminar (理财沙龙)", 0.01, 0.06,
         LEAN_INVESTOR),
};

typedef struct demo_event {
    const char *name;
    int64_t dwell; /* -1: none */
} demo_event;

typedef struct writer {
    sy_conn *c;
    int64_t rows;
} writer;

static int begin_if_needed(writer *w)
{
    if (w->rows % BATCH == 0)
        return sy_conn_begin(w->c);
    return SY_OK;
}

static int commit_if_full(writer *w)
{
    w->rows++;
    if (w->rows % BATCH == 0)
        return sy_conn_commit(w->c);
    return SY_OK;
}

static int row_done(writer *w, int rc)
{
    return rc == SY_OK ? commit_if_full(w) : rc;
}

/* Defines the extra attributes through the API's parser, accepting one the
 * tenant defines already only if it is the same.  On a failure that is not
 * the store's, explains it in why. */
static int define_attributes(writer *w, const sy_demo_opts *o, sy_demo_stats *out, char *why,
                             size_t whylen)
{
    sy_attr_set *have = NULL;
    int rc = sy_attr_load(w->c, o->tenant, &have);
    for (size_t i = 0; i < SY_ARRAY_LEN(k_attrs) && rc == SY_OK; i++) {
        const struct demo_attr *a = &k_attrs[i];
        json_t *body = json_pack("{s:s, s:s, s:s}", "name", a->name, "type", a->type, "description",
                                 a->description);
        if (a->values) {
            json_t *v = json_array();
            for (int j = 0; j < a->nvalues; j++)
                json_array_append_new(v, json_string(a->values[j]));
            json_object_set_new(body, "values", v);
        }
        if (a->unit)
            json_object_set_new(body, "unit", json_string(a->unit));
        sy_attr_def d;
        const char *field;
        char perr[256];
        bool ok = sy_attr_def_parse(body, &d, &field, perr, sizeof perr);
        json_decref(body);
        if (!ok) {
            snprintf(why, whylen, "demo attribute %s: %.200s", a->name, perr);
            rc = SY_ERR;
            break;
        }
        const sy_attr_def *old = sy_attr_find(have, a->name);
        if (old) {
            json_t *x = sy_attr_def_json(old), *y = sy_attr_def_json(&d);
            json_object_del(x, "description");
            json_object_del(y, "description");
            if (!json_equal(x, y)) {
                snprintf(why, whylen, "tenant '%s' defines attribute '%s' otherwise than the demo",
                         o->tenant, a->name);
                rc = SY_ERR;
            }
            json_decref(x);
            json_decref(y);
        } else {
            rc = row_done(w, sy_attr_insert(w->c, o->tenant, &d, o->now_ms));
            out->attributes += rc == SY_OK;
        }
        sy_attr_def_clear(&d);
    }
    sy_attr_set_release(have);
    return rc;
}

/* Inserts the tag catalogue with the columns POST /v1/tags writes. */
static int define_tags(writer *w, const sy_demo_opts *o, sy_demo_stats *out, char *why,
                       size_t whylen)
{
    static const char sql[] =
        "INSERT INTO tags (tenant_id, name, category, kind, expression, description, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
    int rc = SY_OK;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_tags) && rc == SY_OK; i++) {
        const struct demo_tag *t = &k_tags[i];
        if (t->expression) {
            sy_seg_error e;
            sy_seg_node *ast = sy_seg_parse(t->expression, strlen(t->expression), &e);
            if (!ast) {
                snprintf(why, whylen, "demo tag %s: %.200s", t->name, e.msg);
                return SY_ERR;
            }
            sy_seg_free(ast);
        }
        sy_stmt *st = sy_conn_prepare(w->c, sql);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, o->tenant);
        sy_stmt_bind_text(st, 2, t->name);
        sy_stmt_bind_text(st, 3, t->category);
        sy_stmt_bind_text(st, 4, t->expression ? "rule" : "manual");
        sy_stmt_bind_text(st, 5, t->expression);
        sy_stmt_bind_text(st, 6, t->description);
        sy_stmt_bind_i64(st, 7, o->now_ms);
        rc = sy_stmt_exec(st);
        if (rc == SY_ECONSTRAINT)
            snprintf(why, whylen, "tenant '%s' has a tag '%s' already", o->tenant, t->name);
        rc = row_done(w, rc);
        out->tags += rc == SY_OK;
    }
    return rc;
}

/* The demo's point types, as POST /v1/point-types defines them: 积分 kept
 * until the end of the year after the one they were earned in (a common
 * bank rule), and an event currency, 阳光值, valid for 30 days.  A type the
 * tenant has already is left as it is. */
static int define_point_types(writer *w, const sy_demo_opts *o, sy_demo_stats *out)
{
    static const sy_point_type types[] = {
        {.code = "points", .name = "积分", .expiry = SY_EXPIRY_YEAR_END, .n = 1},
        {.code = "sunshine", .name = "阳光值", .expiry = SY_EXPIRY_DAYS, .n = 30},
    };
    int rc = SY_OK;
    for (size_t i = 0; i < SY_ARRAY_LEN(types) && rc == SY_OK; i++) {
        sy_point_type t = types[i];
        t.created_at = o->now_ms;
        rc = sy_ledger_type_create(w->c, o->tenant, &t);
        out->point_types += rc == SY_OK;
        rc = row_done(w, rc == SY_LEDGER_TYPE_EXISTS ? SY_OK : rc);
    }
    return rc;
}

/* The demo's benefits catalogue, as the API defines it.  Written only into
 * a tenant without one (a second demo run keeps the first's). */
static int define_benefits(writer *w, const sy_demo_opts *o, sy_demo_stats *out)
{
    static const struct {
        const char *code, *name;
    } suppliers[] = {
        {"wxpay", "微信支付立减金"},
        {"jdcard", "京东E卡"},
        {"gifts", "礼品供应商"},
    };
    const int64_t U = SY_BENEFIT_UNSET;
    sy_benefit_item items[] = {
        {.code = "cp_10",
         .name = "10元支付立减金",
         .supplier = "wxpay",
         .kind = SY_BENEFIT_COUPON,
         .face_value = 1000,
         .cost_price = 950,
         .params = "{\"threshold\":5000}",
         .stock = 10000,
         .limits = {1, 3, U},
         .validity_days = 30,
         .revoke_returns_stock = true},
        {.code = "jd_50",
         .name = "京东E卡50元",
         .supplier = "jdcard",
         .kind = SY_BENEFIT_VOUCHER,
         .face_value = 5000,
         .cost_price = 4850,
         .params = "{}",
         .limits = {U, U, 2},
         .validity_days = 365},
        {.code = "umbrella",
         .name = "定制雨伞",
         .supplier = "gifts",
         .kind = SY_BENEFIT_GOODS,
         .face_value = 8800,
         .cost_price = 3500,
         .params = "{\"sku\":\"UMB-2026\"}",
         .stock = 500,
         .limits = {U, U, 1},
         .validity_days = U,
         .revoke_returns_stock = true},
        {.code = "loan_rate",
         .name = "消费贷利率优惠0.3%",
         .supplier = "wxpay",
         .kind = SY_BENEFIT_FINANCIAL,
         .face_value = 0,
         .cost_price = 0,
         .params = "{\"basis_points\":30,\"right\":\"rate_discount\"}",
         .stock = 1000,
         .limits = {U, U, 1},
         .validity_days = 90,
         .segment_expression = "aum >= 50000000",
         .revoke_returns_stock = true},
        {.code = "transfer_fee",
         .name = "跨行转账免手续费",
         .supplier = "wxpay",
         .kind = SY_BENEFIT_FINANCIAL,
         .face_value = 200,
         .cost_price = 0,
         .params = "{\"fee\":\"interbank_transfer\",\"right\":\"fee_waiver\",\"times\":10}",
         .stock = 100000,
         .limits = {U, 1, U},
         .validity_days = 30,
         .revoke_returns_stock = true},
    };
    int rc = SY_OK;
    for (size_t i = 0; i < SY_ARRAY_LEN(suppliers) && rc == SY_OK; i++) {
        rc = sy_benefit_supplier_create(w->c, o->tenant, suppliers[i].code, suppliers[i].name, "",
                                        o->now_ms);
        if (rc == SY_BENEFIT_EXISTS)
            return SY_OK; /* the tenant has its catalogue */
        rc = row_done(w, rc);
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(items) && rc == SY_OK; i++) {
        items[i].available_from = items[i].available_until = U;
        items[i].operator_id = "demo";
        items[i].now_ms = o->now_ms;
        rc = row_done(w, sy_benefit_item_create(w->c, o->tenant, &items[i]));
        out->benefit_items += rc == SY_OK;
    }
    /* the voucher's pool: 200 codes as a supplier would send them */
    char pool[200][24];
    const char *codes[200];
    bool dup[200];
    int64_t added;
    for (int i = 0; i < 200; i++) {
        snprintf(pool[i], sizeof pool[i], "JD50-%04X-%04X", (unsigned)(i * 7919 % 65536),
                 (unsigned)((i * 104729 + 4099) % 65536));
        codes[i] = pool[i];
    }
    if (rc == SY_OK)
        rc = row_done(w, sy_benefit_codes_add(w->c, o->tenant, "jd_50", codes, 200, "demo",
                                              o->now_ms, dup, &added));
    /* one of each: a package's units count toward the items' limits */
    const sy_benefit_package_line lines[] = {
        {"cp_10", 1}, {"jd_50", 1}, {"loan_rate", 1}, {"transfer_fee", 1}};
    const char *missing;
    if (rc == SY_OK)
        rc = row_done(w, sy_benefit_package_create(w->c, o->tenant, "private_banking",
                                                   "私行客户权益套餐",
                                                   "for customers with AUM of"
                                                   " 6 million yuan or more",
                                                   NULL, "aum >= 600000000", lines,
                                                   SY_ARRAY_LEN(lines), o->now_ms, &missing));
    const sy_benefit_listing listings[] = {
        {.code = "cp_10_for_500",
         .item = "cp_10",
         .title = "10元立减金 · 500积分",
         .point_type = "points",
         .price = 500,
         .limits = {U, 2, U},
         .active = true},
        {.code = "jd_50_for_4000",
         .item = "jd_50",
         .title = "京东E卡50元 · 4000积分",
         .point_type = "points",
         .price = 4000,
         .limits = {U, U, U},
         .active = true},
        {.code = "umbrella_for_300",
         .item = "umbrella",
         .title = "定制雨伞 · 300阳光值",
         .point_type = "sunshine",
         .price = 300,
         .limits = {U, U, U},
         .active = true},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(listings) && rc == SY_OK; i++) {
        sy_benefit_listing l = listings[i];
        l.now_ms = o->now_ms;
        rc = row_done(w, sy_benefit_listing_create(w->c, o->tenant, &l));
    }
    return rc;
}

/* What the rest of the generation needs to know of a customer. */
typedef struct profile {
    int age;
    int64_t aum, registered_day;
    bool app, wechat, credit_card, managed, complaint, has_fund, investor;
    double activity; /* chance of opening the app on a day */
} profile;

/* A customer's attributes, written straight to their canonical text (what
 * json_dumps gives with JSON_COMPACT | JSON_SORT_KEYS): building a jansson
 * object of 50 members and dumping it was a quarter of the generation time.
 * The demo's values never need escaping. */
#define ATTRS_MAX 64
typedef struct attrs {
    struct {
        const char *key;
        char val[48]; /* as JSON */
    } f[ATTRS_MAX];
    int n;
} attrs;

static void set_raw(attrs *a, const char *k, const char *json)
{
    assert(a->n < ATTRS_MAX && strlen(json) < sizeof a->f[0].val);
    a->f[a->n].key = k;
    strcpy(a->f[a->n++].val, json);
}

static void set_str(attrs *a, const char *k, const char *v)
{
    char q[48];
    assert(!strpbrk(v, "\"\\") && strlen(v) + 3 <= sizeof q);
    snprintf(q, sizeof q, "\"%s\"", v);
    set_raw(a, k, q);
}

static void set_int(attrs *a, const char *k, int64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)v);
    set_raw(a, k, t);
}

static void set_bool(attrs *a, const char *k, bool v)
{
    set_raw(a, k, v ? "true" : "false");
}

static void set_date(attrs *a, const char *k, int64_t day)
{
    char d[11];
    sy_format_date(day, d);
    set_str(a, k, d);
}

static int attr_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The JSON object, keys in byte order; the caller frees it. */
static char *attrs_text(attrs *a)
{
    qsort(a->f, (size_t)a->n, sizeof a->f[0], attr_cmp);
    size_t cap = 2, len = 0;
    for (int i = 0; i < a->n; i++)
        cap += strlen(a->f[i].key) + strlen(a->f[i].val) + 4;
    char *out = sy_xmalloc(cap);
    out[len++] = '{';
    for (int i = 0; i < a->n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s\"%s\":%s", i ? "," : "", a->f[i].key,
                                a->f[i].val);
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

/* Draws one customer: fills its attributes and p. */
static void draw_customer(rng *r, int64_t now_day, attrs *a, profile *p)
{
    memset(p, 0, sizeof *p);
    a->n = 0;
    int age = 18 + (int)fmin(62, fabs(38 + normal(r) * 12 - 18));
    int city = WEIGHTED(r, k_city_w);
    int risk = WEIGHTED(r, k_risk_w);
    /* log-normal AUM in fen: median 50,000 yuan, a long tail */
    int64_t aum = (int64_t)(exp(log(50000.0) + normal(r) * 1.6) * 100.0);
    int64_t reg_day = now_day - below(r, 3 * 365);
    bool employee = chance(r, 0.006);
    bool payroll = employee || chance(r, 0.35);
    p->age = age;
    p->aum = aum;
    p->registered_day = reg_day;
    p->credit_card = chance(r, 0.4);

    /* the bank template */
    char branch[40]; /* room for any int and long long: gcc -O1 cannot see their range */
    snprintf(branch, sizeof branch, "B%02d%02lld", city + 1, (long long)below(r, 12) + 1);
    set_str(a, "risk_level", (const char *[]){"R1", "R2", "R3", "R4", "R5"}[risk]);
    set_date(a, "risk_assessed_at", reg_day + below(r, now_day - reg_day + 1));
    set_int(a, "aum", aum);
    set_str(a, "branch", branch);
    set_str(a, "city", k_cities[city]);
    set_int(a, "birth_year", 2026 - age);
    set_str(a, "gender", chance(r, 0.5) ? "M" : "F");
    set_bool(a, "payroll", payroll);
    set_bool(a, "credit_card", p->credit_card);
    set_date(a, "registered_at", reg_day);
    if (aum >= 50000000) { /* 500,000 yuan and more: a customer manager */
        char mgr[32];
        snprintf(mgr, sizeof mgr, "M%04lld", (long long)below(r, 400) + 1);
        set_str(a, "manager_id", mgr);
        p->managed = true;
    }

    /* who they are */
    int occ;
    if (age >= 60 && chance(r, 0.8))
        occ = OCC_RETIRED;
    else if (age < 23 && chance(r, 0.6))
        occ = OCC_STUDENT;
    else
        occ = WEIGHTED(r, k_occupation_w);
    if (payroll && (occ == OCC_SELF_EMPLOYED || occ == OCC_OWNER || occ == OCC_FREELANCE))
        occ = OCC_EMPLOYEE;
    int edu = WEIGHTED(r, k_education_w);
    if ((occ == OCC_CIVIL || occ == OCC_PROFESSIONAL) && edu < EDU_BACHELOR)
        edu = EDU_BACHELOR;
    if (occ == OCC_STUDENT && edu > EDU_BACHELOR)
        edu = EDU_BACHELOR;
    int marital = weighted(r, k_marital_w[age < 25 ? 0 : age < 35 ? 1 : age < 60 ? 2 : 3], 4);
    int stage = occ == OCC_STUDENT         ? STAGE_STUDENT
                : age >= 60                ? STAGE_RETIRED
                : marital == 0             ? (age < 35 ? STAGE_SINGLE : STAGE_MIDLIFE)
                : marital == 1 && age < 32 ? STAGE_NEWLYWED
                : age < 45                 ? STAGE_PARENT
                                           : STAGE_MIDLIFE;
    if (chance(r, 0.92))
        set_str(a, "occupation", k_occupation[occ]);
    if (chance(r, 0.85))
        set_str(a, "education", k_education[edu]);
    if (chance(r, 0.90))
        set_str(a, "marital_status", k_marital[marital]);
    if (chance(r, 0.95))
        set_str(a, "life_stage", k_life_stage[stage]);
    if (chance(r, 0.97))
        set_str(a, "native_province",
                chance(r, 0.6) ? k_city_province[city] : k_provinces[WEIGHTED(r, k_province_w)]);

    /* channels */
    p->app = chance(r, age < 50 ? 0.80 : age < 65 ? 0.60 : 0.35);
    p->wechat = chance(r, age < 50 ? 0.60 : age < 65 ? 0.50 : 0.30);
    double u = uniform(r);
    int channel = p->app && u < 0.72      ? CH_APP
                  : p->wechat && u < 0.85 ? CH_WECHAT
                  : u < 0.96              ? CH_BRANCH
                                          : CH_PHONE;
    set_bool(a, "mobile_banking", p->app);
    set_bool(a, "wechat_bound", p->wechat);
    if (chance(r, 0.90))
        set_str(a, "channel_preference", k_channel[channel]);
    set_bool(a, "e_cny_wallet", chance(r, p->app ? 0.28 : 0.05));
    set_bool(a, "utility_autopay", chance(r, 0.28));
    set_bool(a, "marketing_consent", chance(r, 0.8));
    set_bool(a, "is_employee", employee);
    set_bool(a, "has_car", chance(r, age >= 25 && age < 65 ? 0.32 : 0.06));
    p->complaint = chance(r, 0.015);
    set_bool(a, "complaint_12m", p->complaint);

    /* holdings; funds and wealth products need 1,000 yuan to start */
    bool investable = aum >= 100000;
    bool time_dep = chance(r, 0.2 + 0.25 * (age >= 50) + 0.2 * (aum >= 20000000));
    bool fund = investable && chance(r, 0.08 + 0.06 * risk + 0.12 * (aum >= 10000000));
    bool wealth = investable && chance(r, 0.10 + 0.25 * (aum >= 5000000) + 0.10 * (age >= 40));
    bool insurance = chance(r, 0.10 + 0.12 * (age >= 30 && age < 56));
    bool loan = chance(r, 0.10 + 0.06 * (age < 40));
    bool mortgage = chance(r, age >= 28 && age < 55 ? 0.25 : 0.04);
    bool gold = chance(r, 0.03 + 0.05 * (aum >= 50000000));
    bool pension = age >= 22 && age < 60 && chance(r, 0.16 + 0.10 * payroll);
    p->has_fund = fund;
    p->investor = fund || wealth;
    set_bool(a, "has_time_deposit", time_dep);
    set_bool(a, "has_fund", fund);
    set_bool(a, "has_wealth", wealth);
    set_bool(a, "has_insurance", insurance);
    set_bool(a, "has_loan", loan);
    set_bool(a, "has_mortgage", mortgage);
    set_bool(a, "has_gold", gold);
    set_bool(a, "pension_account", pension);
    set_int(a, "products_held",
            1 + p->credit_card + time_dep + fund + wealth + insurance + loan + mortgage + gold +
                pension);
    int tier = 0;
    while (tier < (int)SY_ARRAY_LEN(k_tier_from) && aum >= k_tier_from[tier])
        tier++;
    set_str(a, "customer_tier", k_tier[tier]);
    if (chance(r, 0.92))
        set_str(a, "investment_experience",
                k_experience[p->investor ? WEIGHTED(r, k_experience_investor_w)
                                         : WEIGHTED(r, k_experience_other_w)]);
    if (chance(r, 0.95))
        set_str(a, "asset_trend", k_trend[WEIGHTED(r, k_trend_w)]);

    /* balances: funds and wealth products take a share of the AUM, deposits
     * the rest; a former fund holder keeps an account with 0 in it */
    double fs = fund ? 0.05 + 0.45 * uniform(r) : 0, ws = wealth ? 0.10 + 0.40 * uniform(r) : 0;
    if (fs + ws > 0.9) {
        double k = 0.9 / (fs + ws);
        fs *= k;
        ws *= k;
    }
    int64_t fund_bal = (int64_t)((double)aum * fs), wealth_bal = (int64_t)((double)aum * ws);
    set_int(a, "deposit_balance", aum - fund_bal - wealth_bal);
    if (fund)
        set_int(a, "fund_balance", fund_bal > 0 ? fund_bal : 1);
    else if (chance(r, 0.1))
        set_int(a, "fund_balance", 0);
    if (loan || mortgage) {
        double yuan = (mortgage ? exp(log(800000.0) + normal(r) * 0.6) : 0) +
                      (loan ? exp(log(50000.0) + normal(r) * 0.8) : 0);
        set_int(a, "loan_balance", (int64_t)yuan * 100);
    }
    /* income: salaries are known for payroll customers, declared by half
     * of the others; Shanghai, Beijing and Shenzhen pay more */
    double big_city = city == 0 || city == 4 || city == 5 ? 1.4 : 1.0; /* k_cities */
    double income = 0;
    if (occ == OCC_RETIRED)
        income = payroll || chance(r, 0.5) ? exp(log(4000.0 * big_city) + normal(r) * 0.4) : 0;
    else if (occ != OCC_STUDENT && payroll)
        income = exp(log(9000.0 * big_city) + normal(r) * 0.55);
    else if (occ != OCC_STUDENT && chance(r, 0.5))
        income = exp(log(7000.0 * big_city) + normal(r) * 0.7);
    if (income > 0)
        set_int(a, "monthly_income", (int64_t)income * 100);
    if (chance(r, 0.85))
        set_int(a, "credit_score",
                (int64_t)fmax(350, fmin(950, 680 + 30 * payroll + normal(r) * 70)));
    /* an account that lies idle is common: more so without mobile banking */
    int64_t txn =
        chance(r, p->app ? 0.10 : 0.25)
            ? 0
            : (int64_t)fmin(400, exp(log(12.0) + normal(r) * 0.8) * (payroll ? 1.3 : 1.0));
    set_int(a, "txn_count_30d", txn);
    if (txn > 0)
        set_date(a, "last_txn_at", now_day - below(r, txn >= 30 ? 1 : 30 / txn));
    else if (chance(r, 0.97))
        set_date(a, "last_txn_at", now_day - 30 - below(r, 700));
    if (chance(r, 0.93)) {
        double mean = 1.5 + 3 * (age >= 55) + 4 * (channel == CH_BRANCH);
        set_int(a, "branch_visits_12m", (int64_t)fmin(100, -mean * log(1 - uniform(r))));
    }
    if (chance(r, 0.97)) {
        /* most had a card long before they registered here, up to ten
         * years and never before the age of 16 */
        int64_t years = age - 16 < 10 ? age - 16 : 10;
        set_date(a, "card_opened_at", reg_day - (chance(r, 0.7) ? below(r, years * 365) : 0));
    }
    int kyc = 2;
    if (chance(r, 0.96)) {
        /* reviews are due every two years and mostly done in time */
        double ago = uniform(r);
        int64_t reviewed = now_day - (int64_t)(1300 * ago * ago);
        set_date(a, "kyc_reviewed_at", reviewed);
        kyc = now_day - reviewed < 730 ? 0 : now_day - reviewed < 1095 ? 1 : 2;
    }
    set_str(a, "kyc_status", k_kyc[kyc]);
    int acq = payroll && chance(r, 0.5) ? ACQ_PAYROLL : WEIGHTED(r, k_acquisition_w);
    set_str(a, "acquisition_channel", k_acquisition[acq]);
    if (acq == ACQ_REFERRAL) {
        char ref[32];
        snprintf(ref, sizeof ref, "S%04lld", (long long)below(r, 800) + 1);
        set_str(a, "referrer_id", ref);
    }
    if (payroll) {
        /* a few large employers pay most of the salaries */
        double e = uniform(r);
        char emp[32];
        snprintf(emp, sizeof emp, "E%05d", (int)(3000 * e * e * e) + 1);
        set_str(a, "payroll_employer", emp);
    }
    /* how often a mobile-banking customer opens the app: most rarely, a
     * few daily; the others leave no app behaviour */
    p->activity = p->app ? fmin(0.9, exp(log(0.11) + normal(r) * 1.1)) : 0;
}

static bool leans(demo_lean l, const profile *p)
{
    switch (l) {
    case LEAN_NONE:
        return false;
    case LEAN_MANAGED:
        return p->managed;
    case LEAN_WEALTHY:
        return p->aum >= 100000000;
    case LEAN_MID_AGE:
        return p->age >= 35 && p->age <= 55;
    case LEAN_COMPLAINT:
        return p->complaint;
    case LEAN_CARD:
        return p->credit_card;
    case LEAN_APP:
        return p->app;
    case LEAN_INVESTOR:
        return p->investor;
    }
    return false;
}

int sy_demo_generate(sy_store *s, const sy_pii_keys *k, const sy_demo_opts *o, sy_demo_stats *out,
                     char *err, size_t errlen)
{
    static const char sql_c[] =
        "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, pii, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
    static const char sql_i[] = "INSERT INTO identities (tenant_id, type, value_key, customer_no,"
                                " created_at) VALUES ($1, $2, $3, $4, $5)";
    static const char sql_m[] = "INSERT INTO tag_members (tenant_id, tag, customer_no, added_at)"
                                " VALUES ($1, $2, $3, $4)";
    static const char sql_e[] =
        "INSERT INTO events (tenant_id, event_id, customer_no, name, ts, dwell_ms, props,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    memset(out, 0, sizeof *out);
    writer w = {.c = sy_store_write_conn(s)};
    rng r;
    rng_seed(&r, o->seed);
    int64_t now_day = o->now_ms / DAY_MS;
    int64_t first_day = now_day - o->days + 1;
    char why[256] = "";
    uint64_t t0 = sy_mono_ns();
    double *activity = sy_xmalloc((size_t)o->customers * sizeof *activity);
    bool *has_fund = sy_xmalloc((size_t)o->customers * sizeof *has_fund);
    attrs a;

    /* The schema and the catalogue go into the first transaction, so a
     * failure leaves the tenant as it was. */
    int rc = begin_if_needed(&w);
    if (rc == SY_OK)
        rc = define_attributes(&w, o, out, why, sizeof why);
    if (rc == SY_OK)
        rc = define_tags(&w, o, out, why, sizeof why);
    if (rc == SY_OK)
        rc = define_point_types(&w, o, out);
    if (rc == SY_OK)
        rc = define_benefits(&w, o, out);
    sy_attr_set *schema = NULL;
    if (rc == SY_OK)
        rc = sy_attr_load(w.c, o->tenant, &schema);

    for (int64_t i = 0; i < o->customers && rc == SY_OK; i++) {
        if ((rc = begin_if_needed(&w)) != SY_OK)
            break;
        char no[24];
        snprintf(no, sizeof no, "C%08lld", (long long)(i + 1));
        profile p;
        draw_customer(&r, now_day, &a, &p);
        char *text = attrs_text(&a);
        activity[i] = p.activity;
        has_fund[i] = p.has_fund;
        char name[32], phone[40];
        snprintf(name, sizeof name, "%s%s", k_surnames[below(&r, 16)], k_given[below(&r, 24)]);
        /* Unique per customer: i times an odd number coprime with 10^9 is a
         * bijection on the 9-digit suffix. */
        snprintf(phone, sizeof phone, "1%d%09lld", 3 + (int)below(&r, 7),
                 (long long)(((uint64_t)i * 387420489u + 123456789u) % 1000000000u));
        json_t *pj = json_pack("{s:s, s:s}", "name", name, "phone", phone);
        char *sealed = sy_pii_seal(k, o->tenant, no, pj);
        json_decref(pj);
        int64_t created = p.registered_day * DAY_MS + below(&r, DAY_MS);
        sy_stmt *st = sy_conn_prepare(w.c, sql_c);
        if (!st) {
            rc = SY_ERR;
        } else {
            sy_stmt_bind_text(st, 1, o->tenant);
            sy_stmt_bind_text(st, 2, no);
            sy_stmt_bind_i64(st, 3, i);
            sy_stmt_bind_text(st, 4, text);
            sy_stmt_bind_text(st, 5, sealed);
            sy_stmt_bind_i64(st, 6, created);
            rc = sy_stmt_exec(st);
        }
        if (rc == SY_OK) {
            json_t *obj = json_loads(text, 0, NULL);
            rc = obj ? sy_customer_packed_put(w.c, schema, o->tenant, no, i, obj) : SY_ERR;
            if (rc == SY_OK)
                rc = sy_customer_history_put(w.c, o->tenant, no, NULL, obj, created);
            json_decref(obj);
        }
        rc = row_done(&w, rc);
        free(text);
        free(sealed);
        /* identities: the phone (hashed), the app and WeChat for their users */
        const struct {
            const char *type, *prefix;
            bool has;
        } ids[] = {
            {"phone", NULL, true}, {"app_user_id", "u", p.app}, {"wechat_openid", "o", p.wechat}};
        for (size_t j = 0; j < SY_ARRAY_LEN(ids) && rc == SY_OK; j++) {
            if (!ids[j].has)
                continue;
            char key[80];
            if (!ids[j].prefix)
                sy_phone_key(k, o->tenant, phone, key);
            else
                snprintf(key, sizeof key, "%s-%08lld", ids[j].prefix, (long long)(i + 1));
            if ((rc = begin_if_needed(&w)) != SY_OK)
                break;
            if (!(st = sy_conn_prepare(w.c, sql_i))) {
                rc = SY_ERR;
                break;
            }
            sy_stmt_bind_text(st, 1, o->tenant);
            sy_stmt_bind_text(st, 2, ids[j].type);
            sy_stmt_bind_text(st, 3, key);
            sy_stmt_bind_text(st, 4, no);
            sy_stmt_bind_i64(st, 5, created);
            rc = row_done(&w, sy_stmt_exec(st));
            out->identities++;
        }
        /* manual lists */
        for (size_t t = 0; t < SY_ARRAY_LEN(k_tags) && rc == SY_OK; t++) {
            if (k_tags[t].expression ||
                !chance(&r, leans(k_tags[t].lean, &p) ? k_tags[t].p_in : k_tags[t].p))
                continue;
            if ((rc = begin_if_needed(&w)) != SY_OK)
                break;
            if (!(st = sy_conn_prepare(w.c, sql_m))) {
                rc = SY_ERR;
                break;
            }
            sy_stmt_bind_text(st, 1, o->tenant);
            sy_stmt_bind_text(st, 2, k_tags[t].name);
            sy_stmt_bind_text(st, 3, no);
            sy_stmt_bind_i64(st, 4, created);
            rc = row_done(&w, sy_stmt_exec(st));
            out->tag_members++;
        }
        out->customers++;
        if (o->progress && (i + 1) % 50000 == 0)
            fprintf(stderr, "\rdemo: %lld customers", (long long)(i + 1));
    }

    int64_t seq = 0;
    for (int64_t day = first_day; day <= now_day && rc == SY_OK; day++) {
        for (int64_t i = 0; i < o->customers && rc == SY_OK; i++) {
            if (uniform(&r) >= activity[i])
                continue;
            for (int64_t session = 0; session < (o->sessions > 1 ? o->sessions : 1) && rc == SY_OK;
                 session++) {
                demo_event ev[8];
                int n = 0;
                ev[n++] = (demo_event){"login", -1};
                if (uniform(&r) < 0.45)
                    ev[n++] = (demo_event){"sign_in", -1};
                if (uniform(&r) < 0.30) {
                    int64_t dwell = (int64_t)(exp(log(35000.0) + normal(&r) * 0.8));
                    ev[n++] = (demo_event){"view_wealth", dwell};
                    if (uniform(&r) < 0.35) {
                        ev[n++] = (demo_event){"click_wealth", -1};
                        /* only fund holders buy: has_fund stays true */
                        if (has_fund[i] && uniform(&r) < 0.45)
                            ev[n++] = (demo_event){"buy_fund", -1};
                    }
                }
                if (uniform(&r) < 0.10)
                    ev[n++] = (demo_event){"pay_bill", -1};
                char no[24];
                snprintf(no, sizeof no, "C%08lld", (long long)(i + 1));
                int64_t t = day * DAY_MS + below(&r, DAY_MS - 600000);
                for (int e = 0; e < n && rc == SY_OK; e++) {
                    if ((rc = begin_if_needed(&w)) != SY_OK)
                        break;
                    char id[32];
                    snprintf(id, sizeof id, "demo-%lld", (long long)++seq);
                    t += 1000 + below(&r, 60000);
                    if (t > o->now_ms)
                        t = o->now_ms;
                    sy_stmt *st = sy_conn_prepare(w.c, sql_e);
                    if (!st) {
                        rc = SY_ERR;
                        break;
                    }
                    sy_stmt_bind_text(st, 1, o->tenant);
                    sy_stmt_bind_text(st, 2, id);
                    sy_stmt_bind_text(st, 3, no);
                    sy_stmt_bind_text(st, 4, ev[e].name);
                    sy_stmt_bind_i64(st, 5, t);
                    if (ev[e].dwell >= 0)
                        sy_stmt_bind_i64(st, 6, ev[e].dwell);
                    else
                        sy_stmt_bind_null(st, 6);
                    sy_stmt_bind_null(st, 7);
                    sy_stmt_bind_i64(st, 8, t);
                    rc = row_done(&w, sy_stmt_exec(st));
                    out->events++;
                }
            }
        }
        if (o->progress) {
            double secs = (double)(sy_mono_ns() - t0) / 1e9;
            fprintf(stderr, "\rdemo: %lld customers, day %lld/%lld, %lld events (%.0f rows/s)   ",
                    (long long)out->customers, (long long)(day - first_day + 1), (long long)o->days,
                    (long long)out->events, (double)w.rows / (secs > 0 ? secs : 1));
        }
    }
    if (o->progress)
        fprintf(stderr, "\n");
    sy_attr_set_release(schema);
    free(activity);
    free(has_fund);
    if (rc == SY_OK && w.rows % BATCH != 0)
        rc = sy_conn_commit(w.c);
    if (rc != SY_OK) {
        snprintf(err, errlen, "%s", why[0] ? why : sy_conn_errmsg(w.c));
        sy_conn_rollback(w.c);
    }
    return rc;
}
