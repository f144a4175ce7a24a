/* routes.c — the route table: every endpoint, the roles that may call it,
 * and its flags.  docs/openapi.yaml describes the same endpoints. */
#include "api.h"
#include "metrics.h"
#include "server.h"
#include "util.h"

#include <stdio.h>

#define ADMIN SY_ROLE_ADMIN
#define AUDITORS (SY_ROLE_ADMIN | SY_ROLE_COMPLIANCE)

sy_route sy_routes[] = {
    {"GET", "/healthz", sy_api_healthz, 0, 0, NULL},
    {"GET", "/readyz", sy_api_readyz, 0, 0, NULL},
    {"GET", "/metrics", sy_api_metrics, 0, 0, NULL},

    {"GET", "/v1/tenant", sy_api_tenant_get, SY_ROLES_ALL, 0, NULL},
    {"PATCH", "/v1/tenant", sy_api_tenant_patch, ADMIN, 0, NULL},

    {"POST", "/v1/keys", sy_api_keys_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/keys", sy_api_keys_list, ADMIN, 0, NULL},
    {"GET", "/v1/keys/{id}", sy_api_keys_get, ADMIN, 0, NULL},
    {"DELETE", "/v1/keys/{id}", sy_api_keys_revoke, ADMIN, 0, NULL},

    {"GET", "/v1/attributes", sy_api_attributes_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/attributes", sy_api_attributes_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/attributes/{name}", sy_api_attributes_get, SY_ROLES_ALL, 0, NULL},
    {"PATCH", "/v1/attributes/{name}", sy_api_attributes_patch, ADMIN, 0, NULL},

    {"POST", "/v1/customers:import", sy_api_customers_import, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"PUT", "/v1/customers/{customer_no}", sy_api_customers_put, ADMIN | SY_ROLE_APP, 0, NULL},
    {"GET", "/v1/customers/{customer_no}", sy_api_customers_get, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/customers/{customer_no}/events", sy_api_customer_events, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/events", sy_api_events_post, ADMIN | SY_ROLE_APP, 0, NULL},
    {"GET", "/v1/identities/{type}/{value}", sy_api_identities_get,
     ADMIN | SY_ROLE_APP | SY_ROLE_COMPLIANCE, SY_ROUTE_PII_PATH, NULL},

    {"POST", "/v1/segments:preview", sy_api_segments_preview, ADMIN | SY_ROLE_ANALYST,
     SY_ROUTE_NO_AUDIT, NULL},
    {"GET", "/v1/segments", sy_api_segments_list, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"POST", "/v1/segments", sy_api_segments_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/segments/{id}", sy_api_segments_get, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"PUT", "/v1/segments/{id}", sy_api_segments_put, ADMIN, 0, NULL},
    {"DELETE", "/v1/segments/{id}", sy_api_segments_delete, ADMIN, 0, NULL},
    {"GET", "/v1/segments/{id}/members", sy_api_segment_members, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/segments/{id}/members/{customer_no}", sy_api_segment_member, SY_ROLES_ALL, 0,
     NULL},
    {"GET", "/v1/segments/{id}/sizes", sy_api_segment_sizes, ADMIN | SY_ROLE_ANALYST, 0, NULL},

    {"GET", "/v1/tags", sy_api_tags_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/tags", sy_api_tags_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/tags/{name}", sy_api_tags_get, SY_ROLES_ALL, 0, NULL},
    {"DELETE", "/v1/tags/{name}", sy_api_tags_delete, ADMIN, 0, NULL},
    {"POST", "/v1/tags/{name}/members", sy_api_tag_members, ADMIN | SY_ROLE_APP, 0, NULL},

    {"GET", "/v1/point-types", sy_api_point_types_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/point-types", sy_api_point_types_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/point-types/{code}", sy_api_point_types_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/customers/{customer_no}/points:earn", sy_api_points_earn, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/customers/{customer_no}/points:spend", sy_api_points_spend, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/customers/{customer_no}/points", sy_api_points_balances, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/customers/{customer_no}/points/history", sy_api_points_history, SY_ROLES_ALL, 0,
     NULL},
    {"GET", "/v1/ledger/{entry_id}", sy_api_ledger_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/ledger/{entry_id}:reverse", sy_api_ledger_reverse, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"POST", "/v1/points:expire", sy_api_points_expire, ADMIN, 0, NULL},

    {"GET", "/v1/benefits/suppliers", sy_api_suppliers_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/benefits/suppliers", sy_api_suppliers_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/benefits/suppliers/{code}", sy_api_suppliers_get, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/benefits/items", sy_api_items_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/benefits/items", sy_api_items_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/benefits/items/{code}", sy_api_items_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/benefits/items/{code}/stock", sy_api_items_stock, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"GET", "/v1/benefits/items/{code}/stock", sy_api_items_stock_moves, AUDITORS | SY_ROLE_ANALYST,
     0, NULL},
    {"POST", "/v1/benefits/items/{code}/codes", sy_api_items_codes, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"GET", "/v1/benefits/packages", sy_api_packages_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/benefits/packages", sy_api_packages_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/benefits/packages/{code}", sy_api_packages_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/customers/{customer_no}/grants", sy_api_grants_create, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/customers/{customer_no}/grants", sy_api_grants_list, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/grants/{code}", sy_api_grants_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/grants/{code}:redeem", sy_api_grants_redeem, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/grants/{code}:revoke", sy_api_grants_revoke, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/grants/{code}:fulfil", sy_api_grants_fulfil, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/grants:expire", sy_api_grants_expire, ADMIN, 0, NULL},
    {"GET", "/v1/mall/listings", sy_api_listings_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/mall/listings", sy_api_listings_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/mall/listings/{code}", sy_api_listings_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/mall/exchange", sy_api_mall_exchange, ADMIN | SY_ROLE_APP, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"GET", "/v1/reconciliation", sy_api_reconciliation, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/activity", sy_api_reports_activity, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/retention", sy_api_reports_retention, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/kpis", sy_api_reports_kpis, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/funnel", sy_api_reports_funnel, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/dwell", sy_api_reports_dwell, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"GET", "/v1/reports/settings", sy_api_reports_settings_get, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"PUT", "/v1/reports/settings", sy_api_reports_settings_put, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/reports/benefits", sy_api_reports_benefits, ADMIN | SY_ROLE_ANALYST, 0, NULL},

    {"GET", "/v1/campaigns", sy_api_campaigns_list, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/campaigns", sy_api_campaigns_create, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}", sy_api_campaigns_get, SY_ROLES_ALL, 0, NULL},
    {"PUT", "/v1/campaigns/{id}", sy_api_campaigns_put, ADMIN, 0, NULL},
    {"POST", "/v1/campaigns/{id}:submit", sy_api_campaigns_submit, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"POST", "/v1/campaigns/{id}:approve", sy_api_campaigns_approve, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"POST", "/v1/campaigns/{id}:reject", sy_api_campaigns_reject, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"POST", "/v1/campaigns/{id}:pause", sy_api_campaigns_pause, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/campaigns/{id}:resume", sy_api_campaigns_resume, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"POST", "/v1/campaigns/{id}:end", sy_api_campaigns_end, ADMIN, SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/campaigns/{id}/checkin", sy_api_campaigns_checkin, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}/customers/{customer_no}", sy_api_campaigns_customer, SY_ROLES_ALL,
     0, NULL},
    {"GET", "/v1/campaigns/{id}/report", sy_api_campaign_report, ADMIN | SY_ROLE_ANALYST, 0, NULL},
    {"POST", "/v1/campaigns/{id}/invites/{customer_no}", sy_api_invites_create, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}/invites/{customer_no}", sy_api_invites_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/campaigns/{id}/referrals", sy_api_referrals_bind, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}/referrals", sy_api_referrals_list, ADMIN | SY_ROLE_ANALYST, 0,
     NULL},
    {"POST", "/v1/campaigns/{id}/referrals:expire", sy_api_referrals_expire, ADMIN,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/campaigns/{id}/referrals/{invitee}:approve", sy_api_referrals_approve, ADMIN,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"POST", "/v1/campaigns/{id}/referrals/{invitee}:reject", sy_api_referrals_reject, ADMIN,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/customers/{customer_no}/offers", sy_api_offers_get, SY_ROLES_ALL, 0, NULL},
    {"PUT", "/v1/campaigns/{id}/prizes", sy_api_lottery_prizes_put, ADMIN, SY_ROUTE_IDEMPOTENT,
     NULL},
    {"GET", "/v1/campaigns/{id}/prizes", sy_api_lottery_prizes_get, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/campaigns/{id}/claim", sy_api_coupon_claim, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}/waves", sy_api_coupon_waves, SY_ROLES_ALL, 0, NULL},
    {"POST", "/v1/campaigns/{id}/draw", sy_api_lottery_draw, ADMIN | SY_ROLE_APP,
     SY_ROUTE_IDEMPOTENT, NULL},
    {"GET", "/v1/campaigns/{id}/draws", sy_api_lottery_draws_list, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/campaigns/{id}/draws/{draw_id}", sy_api_lottery_draw_get, SY_ROLES_ALL, 0, NULL},
    {"GET", "/v1/abuse/rules", sy_api_abuse_rules_get, AUDITORS, 0, NULL},
    {"PUT", "/v1/abuse/rules", sy_api_abuse_rules_put, ADMIN, 0, NULL},
    {"GET", "/v1/abuse/blocklist", sy_api_abuse_blocklist, AUDITORS, 0, NULL},
    {"POST", "/v1/abuse/blocklist", sy_api_abuse_block, ADMIN, 0, NULL},
    {"DELETE", "/v1/abuse/blocklist/{kind}/{value}", sy_api_abuse_unblock, ADMIN, 0, NULL},

    {"GET", "/v1/audit", sy_api_audit_list, AUDITORS, 0, NULL},
};
const int sy_routes_count = (int)SY_ARRAY_LEN(sy_routes);

void sy_routes_init(void)
{
    static char labels[SY_ARRAY_LEN(sy_routes)][96];
    static const char *names[SY_ARRAY_LEN(sy_routes)];
    for (int i = 0; i < sy_routes_count; i++) {
        snprintf(labels[i], sizeof labels[i], "%s %s", sy_routes[i].method, sy_routes[i].pattern);
        sy_routes[i].label = labels[i];
        names[i] = labels[i];
    }
    sy_metrics_init(names, sy_routes_count);
}
