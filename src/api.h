/* api.h — the handlers, one file per resource (api_*.c). */
#ifndef SY_API_H
#define SY_API_H

#include "index.h"
#include "server.h"

/* api_ops.c: operations endpoints, no key needed */
void sy_api_healthz(sy_req *r);
void sy_api_readyz(sy_req *r);
void sy_api_metrics(sy_req *r);

/* api_tenant.c */
void sy_api_tenant_get(sy_req *r);
void sy_api_tenant_patch(sy_req *r);

/* api_keys.c */
void sy_api_keys_create(sy_req *r);
void sy_api_keys_list(sy_req *r);
void sy_api_keys_get(sy_req *r);
void sy_api_keys_revoke(sy_req *r);

/* api_attributes.c */
void sy_api_attributes_list(sy_req *r);
void sy_api_attributes_get(sy_req *r);
void sy_api_attributes_create(sy_req *r);
void sy_api_attributes_patch(sy_req *r);

/* api_customers.c */
void sy_api_customers_put(sy_req *r);
void sy_api_customers_get(sy_req *r);
void sy_api_customers_import(sy_req *r);
void sy_api_identities_get(sy_req *r);

/* api_events.c */
void sy_api_events_post(sy_req *r);
void sy_api_customer_events(sy_req *r);

/* api_segments.c */
void sy_api_segments_preview(sy_req *r);
void sy_api_segments_list(sy_req *r);
void sy_api_segments_create(sy_req *r);
void sy_api_segments_get(sy_req *r);
void sy_api_segments_put(sy_req *r);
void sy_api_segments_delete(sy_req *r);
void sy_api_segment_members(sy_req *r);
void sy_api_segment_member(sy_req *r);
void sy_api_segment_sizes(sy_req *r);
/* Records every saved segment's size for its tenant's current business day
 * (run by the server's periodic maintenance). */
void sy_api_segment_sizes_job(sy_app *app);
/* Parses and checks an expression against the tenant's schema and
 * catalogue; kind/name ('t' or 's') is what it is being saved as, for the
 * cycle check (kind 0: not saved).  Records a 400 and returns false when
 * it does not hold. */
bool sy_api_check_expression(sy_req *r, const char *expr, char kind, const char *name);

/* api_tags.c */
void sy_api_tags_list(sy_req *r);
void sy_api_tags_create(sy_req *r);
void sy_api_tags_get(sy_req *r);
void sy_api_tags_delete(sy_req *r);
void sy_api_tag_members(sy_req *r);
/* Who refers to the tag ('t') or segment ('s') name: "tag 'x'" or
 * "segment 'y'", or NULL. */
const char *sy_api_referrer(sy_index *ix, char kind, const char *name, sy_conn *c,
                            const char *tenant);

/* api_points.c */
void sy_api_point_types_list(sy_req *r);
void sy_api_point_types_get(sy_req *r);
void sy_api_point_types_create(sy_req *r);
void sy_api_points_earn(sy_req *r);
void sy_api_points_spend(sy_req *r);
void sy_api_points_balances(sy_req *r);
void sy_api_points_history(sy_req *r);
void sy_api_ledger_get(sy_req *r);
void sy_api_ledger_reverse(sy_req *r);
void sy_api_points_expire(sy_req *r);
/* Expires every tenant's points past their expiry, in batches through the
 * writer (run by the server's periodic maintenance). */
void sy_api_points_expire_job(sy_app *app);

/* api_benefits.c */
void sy_api_suppliers_list(sy_req *r);
void sy_api_suppliers_get(sy_req *r);
void sy_api_suppliers_create(sy_req *r);
void sy_api_items_list(sy_req *r);
void sy_api_items_get(sy_req *r);
void sy_api_items_create(sy_req *r);
void sy_api_items_stock(sy_req *r);
void sy_api_items_stock_moves(sy_req *r);
void sy_api_items_codes(sy_req *r);
void sy_api_packages_list(sy_req *r);
void sy_api_packages_get(sy_req *r);
void sy_api_packages_create(sy_req *r);
void sy_api_grants_create(sy_req *r);
void sy_api_grants_list(sy_req *r);
void sy_api_grants_get(sy_req *r);
void sy_api_grants_redeem(sy_req *r);
void sy_api_grants_revoke(sy_req *r);
void sy_api_grants_fulfil(sy_req *r);
void sy_api_grants_expire(sy_req *r);
void sy_api_listings_list(sy_req *r);
void sy_api_listings_get(sy_req *r);
void sy_api_listings_create(sy_req *r);
void sy_api_mall_exchange(sy_req *r);
void sy_api_reconciliation(sy_req *r);
/* Expires every tenant's grants past their expiry, in batches through the
 * writer (run by the server's periodic maintenance). */
void sy_api_grants_expire_job(sy_app *app);
/* The maintenance loop's expiry of held referral rewards past their review
 * deadline (api_referral.c), every tenant, in batches through the writer. */
void sy_api_referral_expire_job(sy_app *app);

/* api_campaigns.c */
void sy_api_campaigns_list(sy_req *r);
void sy_api_campaigns_create(sy_req *r);
void sy_api_campaigns_get(sy_req *r);
void sy_api_campaigns_put(sy_req *r);
void sy_api_campaigns_submit(sy_req *r);
void sy_api_campaigns_approve(sy_req *r);
void sy_api_campaigns_reject(sy_req *r);
void sy_api_campaigns_pause(sy_req *r);
void sy_api_campaigns_resume(sy_req *r);
void sy_api_campaigns_end(sy_req *r);
void sy_api_campaigns_checkin(sy_req *r);
void sy_api_campaigns_customer(sy_req *r);
/* The events hook.  Before an event batch is written (request thread): the
 * task campaigns running now and, for each, which of the n events'
 * customers are in its audience; NULL when none runs (*failed: a 500 was
 * recorded).  In the writer, after event i was stored: rewards the tasks
 * it completes, appending one object per reward to `rewards`, and one per
 * task the event matched but did not earn to `refusals` (with `reason`, a
 * problem type; refusals may be NULL). */
typedef struct sy_task_plan sy_task_plan;
sy_task_plan *sy_api_task_plan(sy_req *r, size_t n, const char *const *customer_no, bool *failed);
int sy_api_task_apply(sy_conn *c, sy_req *r, sy_task_plan *p, size_t i, const char *customer_no,
                      const char *name, const char *event_id, int64_t ts, int64_t dwell_ms,
                      const char *props, json_t *rewards, json_t *refusals);
void sy_api_task_plan_free(sy_task_plan *p);
/* Forgets the campaigns the writer loaded, for a second run of the batch's
 * apply in a new transaction (sy_req_write_rerun). */
void sy_api_task_plan_reset(sy_task_plan *p);

/* The members of the caller's saved segment id now (a new bitmap), or NULL
 * when there is no such segment. */
roaring_bitmap_t *sy_api_saved_segment_members(sy_req *r, const char *id);

/* api_reports.c */
void sy_api_reports_activity(sy_req *r);
void sy_api_reports_retention(sy_req *r);
void sy_api_reports_kpis(sy_req *r);
void sy_api_reports_funnel(sy_req *r);
void sy_api_reports_dwell(sy_req *r);
/* GET and PUT /v1/reports/settings: the tenant's timed event names */
void sy_api_reports_settings_get(sy_req *r);
void sy_api_reports_settings_put(sy_req *r);
/* api_benefits.c: issued, redeemed, expired and revoked by day, supplier and item */
void sy_api_reports_benefits(sy_req *r);

/* The campaign engine's refusals as problems (check-in's types), and the
 * audience of one customer (a saved segment; false: a 500 was recorded),
 * for the handlers of other campaign types. */
struct sy_campaign_result;
void sy_api_campaign_refusal(sy_req *r, int rc, const struct sy_campaign_result *why,
                             const char *id, const char *no);
bool sy_api_campaign_audience(sy_req *r, const char *segment, const char *no, bool *in);

/* api_lottery.c: lotteries and anti-abuse */
void sy_api_lottery_prizes_put(sy_req *r);
void sy_api_lottery_prizes_get(sy_req *r);
void sy_api_lottery_draw(sy_req *r);
void sy_api_lottery_draw_get(sy_req *r);
void sy_api_lottery_draws_list(sy_req *r);
void sy_api_abuse_rules_get(sy_req *r);
void sy_api_abuse_rules_put(sy_req *r);
void sy_api_abuse_block(sy_req *r);
void sy_api_abuse_unblock(sy_req *r);
void sy_api_abuse_blocklist(sy_req *r);
/* The anti-abuse gate of check-in (action 0), draws (1) and coupon claims (2), in the request
 * thread before the write: the X-Device-Id header, the blocklist, rate
 * limits and velocity rules.  false: the refusal (or a 400) is recorded.
 * After an accepted participation commits, sy_api_abuse_accepted(state)
 * counts it for the velocity rules. */
bool sy_api_abuse_gate(sy_req *r, int action, const char *customer_no, void **state);
void sy_api_abuse_accepted(sy_req *r, void *state);
/* The device id and client address the gate saw (either may be NULL). */
void sy_api_abuse_subject(void *state, const char **device, const char **ip);

/* api_coupon.c: coupon drops (claims, today's waves) */
void sy_api_coupon_claim(sy_req *r);
void sy_api_coupon_waves(sy_req *r);

/* A campaign read for the other campaign handlers (404/500 recorded when
 * NULL; free with sy_campaign_free). */
struct sy_campaign;
struct sy_campaign *sy_api_campaign_read(sy_req *r, const char *id);

/* api_referral.c: referral fission (invite codes, bindings, review) and the
 * events hook that pays qualified referrals in the events transaction. */
void sy_api_invites_create(sy_req *r);
void sy_api_invites_get(sy_req *r);
void sy_api_referrals_bind(sy_req *r);
void sy_api_referrals_list(sy_req *r);
void sy_api_referrals_approve(sy_req *r);
void sy_api_referrals_reject(sy_req *r);
void sy_api_referrals_expire(sy_req *r);
typedef struct sy_referral_plan sy_referral_plan;
/* The referral campaigns running now (NULL when none; *failed: a 500 was
 * recorded). */
sy_referral_plan *sy_api_referral_plan(sy_req *r, bool *failed);
/* In the writer, after an event was stored: qualifies the customer's
 * waiting binding, appending what happened to `out`. */
int sy_api_referral_apply(sy_conn *c, sy_req *r, sy_referral_plan *p, const char *customer_no,
                          const char *name, const char *event_id, int64_t ts, json_t *out);
void sy_api_referral_plan_free(sy_referral_plan *p);
/* Likewise (sy_api_task_plan_reset). */
void sy_api_referral_plan_reset(sy_referral_plan *p);

/* api_offers.c: what one customer can use now (千人千面) */
void sy_api_offers_get(sy_req *r);
/* Forget the cached offers catalogue of a tenant (a campaign changed). */
void sy_api_offers_invalidate(const char *tenant);
/* sy_campaign_who.eligible for the request req (a sy_req *): whether the
 * customer is in a benefit item's eligibility segment, evaluated in the
 * tenant's index (api_benefits.c). */
int sy_api_reward_eligible(void *req, const char *segment_id, const char *expression,
                           const char *customer_no);
/* Forgets the remembered audience of a lottery campaign (api_lottery.c),
 * after a committed change that sent it back to draft. */
void sy_api_lottery_forget_audience(const char *tenant, const char *id);

/* api_report.c: the campaign report (JSON or CSV, uplift of ?goal=) */
void sy_api_campaign_report(sy_req *r);

/* api_audit.c */
void sy_api_audit_list(sy_req *r);

/* Runs sql with the caller's tenant bound as $1 on a read connection and
 * collects every row through row() into a new array.  On a store failure
 * it records the 500 reply and returns NULL. */
json_t *sy_api_tenant_rows(sy_req *r, const char *sql, json_t *(*row)(sy_stmt *st));

/* Replies 500 for a store failure on a read path and logs the cause. */
void sy_api_store_error(sy_req *r, sy_conn *c);

/* ?unmask=true (personal data in clear): only admin and compliance keys;
 * any other role gets a 403 naming `unmask` and false. */
bool sy_api_unmask_allowed(sy_req *r);

#endif
